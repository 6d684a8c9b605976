package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestReadmeStory runs the README's shell session ("A network of separate processes")
// as a new user pastes it, through bash, and checks each step's output (the scripts
// in testdata/story). The session is the README's text itself, not a copy: it builds
// medledger, starts four node processes on 127.0.0.1, ingests, grants a FHIR Consent,
// reads, revokes, reads again, prints the accounting and stops the nodes.
func TestReadmeStory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds medledger and starts four node processes")
	}
	for _, tool := range []string{"bash", "curl", "jq", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the README session needs %s", tool)
		}
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	session, err := readmeSession(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	goEnv := map[string]string{}
	for _, v := range []string{"GOCACHE", "GOMODCACHE", "GOPATH", "GOFLAGS", "GOPROXY", "GOTOOLCHAIN"} {
		out, err := exec.Command("go", "env", v).Output()
		if err != nil {
			t.Fatal(err)
		}
		goEnv[v] = strings.TrimSpace(string(out))
	}
	testscript.Run(t, testscript.Params{
		Dir: "testdata/story",
		Setup: func(env *testscript.Env) error {
			for k, v := range goEnv {
				env.Setenv(k, v)
			}
			env.Setenv("REPO_ROOT", root)
			return os.WriteFile(filepath.Join(env.WorkDir, "session.sh"), []byte(session), 0o644)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"session": runSession,
		},
	})
}

// errNoSession is a README without the session's code block.
var errNoSession = errors.New("README: no ```sh block under \"## A network of separate processes\"")

// readmeSession is the first ```sh block after the heading "## A network of separate
// processes".
func readmeSession(readme string) (string, error) {
	b, err := os.ReadFile(readme)
	if err != nil {
		return "", err
	}
	_, rest, ok := strings.Cut(string(b), "\n## A network of separate processes\n")
	if !ok {
		return "", errNoSession
	}
	_, rest, ok = strings.Cut(rest, "\n```sh\n")
	if !ok {
		return "", errNoSession
	}
	block, _, ok := strings.Cut(rest, "\n```\n")
	if !ok {
		return "", errNoSession
	}
	return block + "\n", nil
}

// session DIR SCRIPT runs bash SCRIPT in DIR within 4 minutes, in its own process
// group. When bash returns the group must be empty (the session stopped its nodes);
// whatever is left is killed and the command fails.
func runSession(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: session DIR SCRIPT")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", ts.MkAbs(args[1]))
	cmd.Dir = args[0]
	cmd.Env = nil
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "GOCACHE", "GOMODCACHE", "GOPATH", "GOFLAGS", "GOPROXY", "GOTOOLCHAIN"} {
		cmd.Env = append(cmd.Env, k+"="+ts.Getenv(k))
	}
	cmd.Stdout, cmd.Stderr = ts.Stdout(), ts.Stderr()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	err := cmd.Run()
	if cmd.Process != nil && syscall.Kill(-cmd.Process.Pid, 0) == nil {
		// The session's last line stops its nodes: a process still in its group is a
		// failure of the session (killed here, so none outlives the test).
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		ts.Fatalf("the session left processes running")
	}
	ts.Check(err)
}

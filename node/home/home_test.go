package home

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// TestAPILimitsConfig: the [api] limits read from config.toml; absent they are unset
// (the API's defaults apply), and nonsense is refused naming the key.
func TestAPILimitsConfig(t *testing.T) {
	var c Config
	src := "name = 'Ada'\n[api]\nlisten = '127.0.0.1:8080'\nrequest_timeout = '20s'\nread_timeout = '3s'\nmax_conns = 300\npatient_burst = 4\n"
	if err := toml.Unmarshal([]byte(src), &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	got := c.API.Timeouts()
	if got["request_timeout"] != 20*time.Second || got["read_timeout"] != 3*time.Second || got["write_timeout"] != 0 ||
		c.API.MaxConns != 300 || c.API.PatientBurst != 4 || c.API.ClientRate != 0 {
		t.Errorf("read %+v, timeouts %v", c.API, got)
	}

	for _, tt := range []struct {
		set  func(*APIConfig)
		want string
	}{
		{func(a *APIConfig) { a.ReadTimeout = "soon" }, "api.read_timeout"},
		{func(a *APIConfig) { a.IdleTimeout = "-1s" }, "api.idle_timeout"},
		{func(a *APIConfig) { a.MaxConns = -1 }, "api.max_conns"},
		{func(a *APIConfig) { a.ClientBurst = -3 }, "api.client_burst"},
	} {
		c := Config{Name: "Ada"}
		tt.set(&c.API)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want an error naming %s", c.API, err, tt.want)
		}
	}
}

// TestRPCListenLoopbackOnly: CometBFT's RPC answers every chain query without
// authentication, so the config refuses to bind it beyond loopback.
func TestRPCListenLoopbackOnly(t *testing.T) {
	for addr, ok := range map[string]bool{
		"":                       true, // off
		"tcp://127.0.0.1:26657":  true,
		"tcp://[::1]:26657":      true,
		"tcp://localhost:26657":  true,
		"tcp://0.0.0.0:26657":    false,
		"tcp://10.0.0.5:26657":   false,
		"tcp://[::]:26657":       false,
		"tcp://example.org:2665": false,
		"tcp://127.0.0.1":        false, // no port
	} {
		c := Config{Name: "Ada", Chain: ChainConfig{RPCListen: addr}}
		err := c.Validate()
		if ok != (err == nil) {
			t.Errorf("rpc_listen %q: %v, want accepted %v", addr, err, ok)
		}
		if err != nil && !strings.Contains(err.Error(), "chain.rpc_listen") {
			t.Errorf("rpc_listen %q: %v does not name the key", addr, err)
		}
	}
}

// TestLock: a home is held by one holder at a time; the second is told who holds it,
// and gets it once the first lets go.
func TestLock(t *testing.T) {
	h := &Home{Dir: t.TempDir()}
	unlock, err := h.Lock()
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.Lock()
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Fatalf("second lock: %v, want ErrInUse naming pid %d", err, os.Getpid())
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	unlock, err = h.Lock()
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	unlock()
}

// TestWebPublicOrigin: [web] public_origin reads from config.toml in the browser's
// form; a value that is not scheme://host[:port] (http or https, no path, query or
// fragment) is refused at load with one line naming the key; absent, it is unset.
func TestWebPublicOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"":                                  "",
		"https://records.example.org":       "https://records.example.org",
		"https://Records.Example.org:443":   "https://records.example.org",
		"http://10.0.0.7:8080":              "http://10.0.0.7:8080",
		"https://records.example.org/":      "!",
		"https://records.example.org/app":   "!",
		"https://records.example.org?a=b":   "!",
		"https://records.example.org#frag":  "!",
		"ws://records.example.org":          "!",
		"records.example.org":               "!",
		"https://records.example.org:99999": "!",
	} {
		var c Config
		src := fmt.Sprintf("name = 'Ada'\n[web]\npublic_origin = %q\n", in)
		if err := toml.Unmarshal([]byte(src), &c); err != nil {
			t.Fatal(err)
		}
		err := c.Validate()
		if want == "!" {
			if err == nil || !strings.Contains(err.Error(), "web.public_origin") || strings.Contains(err.Error(), "\n") {
				t.Errorf("public_origin %q: %v, want one line naming web.public_origin", in, err)
			}
			continue
		}
		if err != nil || c.Web.PublicOrigin != want {
			t.Errorf("public_origin %q: %q, %v; want %q", in, c.Web.PublicOrigin, err, want)
		}
	}

	h, err := Init(t.TempDir(), Config{Name: "Ada", Web: WebConfig{PublicOrigin: "https://records.example.org"}})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Load(h.Dir); err != nil || got.Config.Web.PublicOrigin != "https://records.example.org" {
		t.Fatalf("Load: %v, %v", got, err)
	}
	b, err := os.ReadFile(h.Path(ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(b), "public_origin = 'https://records.example.org'", "public_origin = 'https://records.example.org/app/'", 1)
	if bad == string(b) {
		t.Fatalf("config.toml holds no public_origin line:\n%s", b)
	}
	if err := os.WriteFile(h.Path(ConfigFile), []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(h.Dir); err == nil || !strings.Contains(err.Error(), "web.public_origin") {
		t.Errorf("Load of a public origin with a path: %v, want an error naming web.public_origin", err)
	}
}

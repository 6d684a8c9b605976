package web_test

import (
	"context"
	"fmt"
	"iter"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/dom"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// The pages are tested in Debian's Chromium, driven through the DevTools protocol
// (chromedp): real pages, real WebCrypto, real cookies, against real nodes.

// chromiumPath is Chromium's executable. When it is missing the test installs
// Debian's package (as .ci/run does); it is skipped, saying why, only if Chromium is
// absent and cannot be installed.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := findChromium(); p != "" {
		return p
	}
	if _, err := exec.LookPath("apt-get"); err != nil || os.Geteuid() != 0 {
		t.Skip("chromium is not installed and cannot be installed here (needs root and apt-get): apt-get install -y chromium")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "apt-get", "install", "-y", "--no-install-recommends", "chromium")
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("chromium is not installed and apt-get install -y chromium failed (%v): %s", err, lastLines(string(out), 5))
	}
	if p := findChromium(); p != "" {
		return p
	}
	t.Skip("chromium is not installed, and installing Debian's package did not provide it")
	return ""
}

func findChromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// browser is one headless Chromium whose console is watched.
type browser struct {
	t         *testing.T
	alloc     context.Context // the browser; tabs and contexts are made from it
	downloads string          // where the default browser context saves downloads
	artifacts string          // where screenshots go
	first     *tab            // the first tab: it started the browser
	mu        sync.Mutex
	problems  []string // console errors, warnings and uncaught exceptions, on any tab
}

// tab is a page in the browser.
type tab struct {
	b      *browser
	ctx    context.Context
	clicks int // clicks attempted, numbering each click's marker
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]), chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1200, 900))
	alloc, cancel := chromedp.NewExecAllocator(t.Context(), opts...)
	t.Cleanup(cancel)
	b := &browser{t: t, alloc: alloc, downloads: t.TempDir(), artifacts: artifactsDir(t)}
	return b
}

// artifactsDir is $MEDLEDGER_ARTIFACTS (made if missing) or the test's temp dir.
func artifactsDir(t *testing.T) string {
	if d := os.Getenv("MEDLEDGER_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err == nil {
			return d
		}
	}
	return t.TempDir()
}

// newTab opens a tab; fresh makes it in a browser context of its own (its own
// cookies and IndexedDB: another person's browser).
func (b *browser) newTab(fresh bool) *tab {
	b.t.Helper()
	var opts []chromedp.ContextOption
	if fresh {
		opts = append(opts, chromedp.WithNewBrowserContext())
	}
	parent := b.alloc
	if b.first != nil {
		parent = b.first.ctx
	}
	ctx, cancel := chromedp.NewContext(parent, opts...)
	b.t.Cleanup(cancel)
	if b.first == nil {
		b.first = &tab{b: b, ctx: ctx}
	}
	tb := &tab{b: b, ctx: ctx}
	messages := chromedp.Console(ctx)
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		b.t.Fatalf("chromium: %v", err)
	}
	go b.watch(messages)
	dir := b.downloads
	if fresh {
		dir = b.t.TempDir()
	}
	params := cdpbrowser.SetDownloadBehaviorParams{Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir}
	if fresh {
		params.BrowserContextID = chromedp.FromContext(ctx).BrowserContextID
	}
	if _, err := chromedp.CallBrowser(ctx, cdpbrowser.SetDownloadBehavior, params); err != nil {
		b.t.Fatalf("chromium: download behaviour: %v", err)
	}
	return tb
}

// watch records the console's errors, warnings and exceptions.
func (b *browser) watch(messages iter.Seq2[chromedp.ConsoleMessage, error]) {
	for m, err := range messages {
		if err != nil {
			return
		}
		if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleWarning || m.IsException() {
			b.mu.Lock()
			b.problems = append(b.problems, fmt.Sprintf("%s %s:%d: %s", m.Type, m.URL, m.Line+1, m.Text))
			b.mu.Unlock()
		}
	}
}

// consoleProblems are the console's errors, warnings and exceptions so far, but for
// the failed requests the test provoked on purpose: Chromium logs every answer
// that is not 2xx, such as the refusal of a wrong token, whose sentence the page
// shows.
func (b *browser) consoleProblems(provoked ...string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, p := range b.problems {
		if !slices.ContainsFunc(provoked, func(s string) bool { return strings.Contains(p, s) }) {
			out = append(out, p)
		}
	}
	return out
}

// do runs steps within d.
func (tb *tab) do(d time.Duration, steps ...chromedp.Action[chromedp.Void]) {
	tb.b.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, d)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		tb.shot("failure")
		tb.b.t.Fatalf("browser: %v", err)
	}
}

// open loads url.
func (tb *tab) open(url string) {
	tb.b.t.Helper()
	tb.do(30*time.Second, chromedp.Navigate(url))
}

// wait waits until the JavaScript expression is truthy.
func (tb *tab) wait(expr string, d time.Duration) {
	tb.b.t.Helper()
	if err := tb.poll(expr, d); err != nil {
		tb.shot("failure")
		tb.b.t.Fatalf("browser: waiting for %s: %v (alert: %q)", expr, err, tb.eval(`document.getElementById("alert").textContent`))
	}
}

// poll waits until the JavaScript expression is truthy; an error if it is not
// within d.
func (tb *tab) poll(expr string, d time.Duration) error {
	ctx, cancel := context.WithTimeout(tb.ctx, d)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(20*time.Millisecond)))
	return err
}

// eval evaluates a JavaScript expression to a string.
func (tb *tab) eval(expr string) string {
	tb.b.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`String(`+expr+`)`))
	if err != nil {
		tb.b.t.Fatalf("browser: %s: %v", expr, err)
	}
	return v
}

// The actions below find their element and act on it without DevTools node IDs: a
// node ID names one element object, and the pages replace elements when they
// refresh (a list re-rendered by the live event stream, a search answered), so an
// action that queries a node, then scrolls to it, then clicks it can find the node
// gone in between ("Could not find node with given id"). Each action instead finds
// its element and checks it in one JavaScript evaluation, and acts on what that
// evaluation settled: a point on the screen, the focused element, a value.

// clickExpr finds the element matching the selector (%[1]s) and, if it can be
// clicked (present, shown, enabled, and the topmost element at its centre once
// scrolled into view), arms a marker that the next click to reach an element
// matching the selector sets to the attempt's number (%[2]d), and returns
// {ok, x, y}; else {ok: false, why}.
const clickExpr = `((sel, attempt) => {
	const e = document.querySelector(sel);
	if (!e) return { ok: false, why: "no element matches" };
	if (!e.getClientRects().length || getComputedStyle(e).visibility !== "visible") return { ok: false, why: "it is not shown" };
	if (e.disabled) return { ok: false, why: "it is disabled" };
	let r = e.getBoundingClientRect();
	if (r.top < 0 || r.left < 0 || r.bottom > innerHeight || r.right > innerWidth) {
		e.scrollIntoView({ block: "center", inline: "center", behavior: "instant" });
		r = e.getBoundingClientRect();
	}
	const x = r.left + r.width / 2, y = r.top + r.height / 2, hit = document.elementFromPoint(x, y);
	if (!hit || !(hit === e || e.contains(hit))) return { ok: false, why: "another element covers it: " + (hit ? hit.outerHTML.slice(0, 80) : "none") };
	document.addEventListener("click", (ev) => { if (ev.target instanceof Element && ev.target.closest(sel)) window.__testClicked = attempt; }, { capture: true, once: true });
	return { ok: true, x, y };
})(%[1]s, %[2]d)`

// clickTarget is clickExpr's answer.
type clickTarget struct {
	OK  bool    `json:"ok"`
	Why string  `json:"why"`
	X   float64 `json:"x"`
	Y   float64 `json:"y"`
}

// click clicks, with the mouse, the first element matching a CSS selector, once it
// can be clicked. A click that reached no element matching the selector (the page
// replaced it between finding and clicking, so the click met nothing or another
// element) had no effect on it, and is made again, twice at most.
func (tb *tab) click(sel string) {
	tb.b.t.Helper()
	const attempts = 3
	deadline := time.Now().Add(10 * time.Second)
	var last clickTarget
	for n := 0; n < attempts && time.Now().Before(deadline); {
		tb.clicks++
		last = evalAs[clickTarget](tb, fmt.Sprintf(clickExpr, strconv.Quote(sel), tb.clicks))
		if !last.OK {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		n++
		tb.do(10*time.Second, chromedp.MouseClickXY(last.X, last.Y))
		if tb.clicked(tb.clicks, 2*time.Second) {
			return
		}
		last.Why = "the click reached no element matching it (the page replaced it meanwhile)"
		tb.b.t.Logf("click %s: %s; clicking again", sel, last.Why)
	}
	tb.shot("failure")
	tb.b.t.Fatalf("browser: clicking %s: %s", sel, last.Why)
}

// clicked says whether the click numbered attempt reached its element, looking for
// at most d. It reads the marker with Runtime.evaluate, as clickExpr armed it: in
// the page's own JavaScript world.
func (tb *tab) clicked(attempt int, d time.Duration) bool {
	tb.b.t.Helper()
	expr := fmt.Sprintf(`window.__testClicked === %d`, attempt)
	for end := time.Now().Add(d); ; time.Sleep(20 * time.Millisecond) {
		if tb.eval(expr) == "true" {
			return true
		}
		if time.Now().After(end) {
			return false
		}
	}
}

// focusInputExpr empties the input matching the selector (%s), if it is shown and
// enabled, focuses it, and says whether it has the focus.
const focusInputExpr = `((e) => {
	if (!e || !e.getClientRects().length || e.disabled) return false;
	e.value = "";
	e.focus();
	return document.activeElement === e;
})(document.querySelector(%s))`

// fill types text into the input matching sel, as a person at the keyboard would,
// and checks the input then holds exactly text.
func (tb *tab) fill(sel, text string) {
	tb.b.t.Helper()
	tb.wait(fmt.Sprintf(focusInputExpr, strconv.Quote(sel)), 10*time.Second)
	tb.do(10*time.Second, chromedp.KeyEvent(text))
	if got := tb.eval(`document.querySelector(` + strconv.Quote(sel) + `).value`); got != text {
		tb.shot("failure")
		tb.b.t.Fatalf("browser: typed %q into %s, which holds %q", text, sel, got)
	}
}

// setValue chooses value in the select (or sets the input) matching sel, as a
// person choosing it would (input and change events), once it is there.
func (tb *tab) setValue(sel, value string) {
	tb.b.t.Helper()
	tb.wait(fmt.Sprintf(`((e, v) => {
		if (!e || e.disabled) return false;
		e.value = v;
		e.dispatchEvent(new Event("input", { bubbles: true }));
		e.dispatchEvent(new Event("change", { bubbles: true }));
		return e.value === v;
	})(document.querySelector(%s), %s)`, strconv.Quote(sel), strconv.Quote(value)), 10*time.Second)
}

// upload chooses files in the file input matching sel, once it is there. The input
// is named by its JavaScript object, found in the same step.
func (tb *tab) upload(sel string, files ...string) {
	tb.b.t.Helper()
	tb.wait(`document.querySelector(`+strconv.Quote(sel)+`) instanceof HTMLInputElement`, 10*time.Second)
	tb.do(10*time.Second, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		obj, err := chromedp.Evaluate[*runtime.RemoteObject](`document.querySelector(`+strconv.Quote(sel)+`)`)(ctx, t)
		if err != nil {
			return err
		}
		defer func() {
			_, _ = cdp.Call(ctx, t, runtime.ReleaseObject, runtime.ReleaseObjectParams{ObjectID: obj.ObjectID})
		}()
		_, err = cdp.Call(ctx, t, dom.SetFileInputFiles, dom.SetFileInputFilesParams{Files: files, ObjectID: obj.ObjectID})
		return err
	}))
}

// evalAs evaluates a JavaScript expression to a value of type T.
func evalAs[T any](tb *tab, expr string) T {
	tb.b.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		tb.b.t.Fatalf("browser: %s: %v", expr, err)
	}
	return v
}

// shot writes a full-page screenshot to the artifacts directory.
func (tb *tab) shot(name string) string {
	ctx, cancel := context.WithTimeout(tb.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.b.t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	path := filepath.Join(tb.b.artifacts, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		tb.b.t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	tb.b.t.Logf("screenshot: %s", path)
	return path
}

// download waits for a finished download in dir whose whole name matches pattern.
func download(t *testing.T, dir, pattern string) []byte {
	t.Helper()
	name := regexp.MustCompile(pattern)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if name.MatchString(e.Name()) {
				b, err := os.ReadFile(filepath.Join(dir, e.Name()))
				if err != nil {
					t.Fatal(err)
				}
				if len(b) > 0 {
					return b
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no download matching %s in %s", pattern, dir)
	return nil
}

// press presses keys (kb's names for the special ones: kb.Tab, kb.Enter) on the
// focused element, as a person at the keyboard would.
func (tb *tab) press(keys string) {
	tb.b.t.Helper()
	tb.do(10*time.Second, chromedp.KeyEvent(keys))
}

// focusState is the focused element as a keyboard user sees it.
type focusState struct {
	Name    string  `json:"name"`    // tag#id[name=value], for messages
	Visible bool    `json:"visible"` // it matches :focus-visible
	Outline string  `json:"outline"` // its computed outline style (none: no focus shown)
	Width   float64 `json:"width"`   // and width, in px
	Match   bool    `json:"match"`   // it matches the selector awaited
}

// focusExpr reports document.activeElement as a focusState; %s is the selector.
const focusExpr = `(() => {
	const e = document.activeElement, s = getComputedStyle(e);
	const name = e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.name ? "[" + e.name + "=" + e.value + "]" : "");
	return { name, visible: e.matches(":focus-visible"), outline: s.outlineStyle, width: parseFloat(s.outlineWidth) || 0, match: e.matches(%s) };
})()`

// tabTo presses Tab until the focused element matches sel (at most max times), and
// returns every element focused on the way, sel's last.
func (tb *tab) tabTo(sel string, max int) []focusState {
	tb.b.t.Helper()
	var seen []focusState
	for range max {
		tb.press(kb.Tab)
		f := evalAs[focusState](tb, fmt.Sprintf(focusExpr, strconv.Quote(sel)))
		seen = append(seen, f)
		if f.Match {
			return seen
		}
	}
	tb.shot("failure")
	tb.b.t.Fatalf("%d presses of Tab never reached %s; focused on the way: %v", max, sel, seen)
	return nil
}

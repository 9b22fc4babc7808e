//go:build e2e

// Package e2e tests the whole moderation flow as a person uses it: the
// status page in headless Chromium submits a text through Laravel, the
// sidecar stores it, the analyzer analyzes it, the projector and the push
// service fold the result, and the page shows it without reloading.
//
// It runs with `make test-readmodel`, which installs and starts what it
// needs. Settings (defaults in brackets):
//
//	E2E_ANALYZER      the analyzer's executable [<repo>/.venv/bin/content-analyzer]
//	E2E_LARAVEL_DIR   the Laravel example [<repo>/examples/laravel]
//	E2E_CHROMIUM      Chromium [/usr/bin/chromium]
//	PROJECTOR_TEST_DATABASE_URL  the PostgreSQL server (required)
package e2e

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/eventsidecar/sidecar/internal/projector"
	"github.com/eventsidecar/sidecar/internal/push"
	"github.com/eventsidecar/sidecar/internal/testenv"
)

func TestStatusPage(t *testing.T) {
	cfg := testenv.Config(t, testenv.Backend{Name: "embedded"})
	cfg.HTTPAddr = "127.0.0.1:0"
	sc := testenv.Start(t, cfg)
	es := testenv.Client(t, sc.Addr())
	suffix := fmt.Sprintf("%08x", rand.Uint32())

	start(t, "analyzer", setting("E2E_ANALYZER", "../.venv/bin/content-analyzer"), nil,
		"ANALYZER_SIDECAR_ADDR="+sc.Addr(), "ANALYZER_GROUP=analyzer-"+suffix,
		"ANALYZER_TOXIC_LEXICON=idiot,stupid", "ANALYZER_LOG_LEVEL=info")
	laravel := startLaravel(t, setting("E2E_LARAVEL_DIR", "../examples/laravel"), "http://"+sc.HTTPAddr())

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() {
		stop()
		wg.Wait()
	})
	db := testenv.PostgresPool(t)
	proj := projector.New(db, es, projector.Options{Group: "read-model-" + suffix, Logger: testenv.Logger(t)})
	submit, _ := url.Parse(laravel + "/content")
	svc, err := push.New(es, push.Options{SubmitURL: submit, Logger: testenv.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	for name, run := range map[string]func(context.Context) error{"projector": proj.Run, "push feed": svc.Run} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(ctx); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}()
	}
	page := httptest.NewServer(svc.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		svc.Close(ctx)
		page.Close()
	})

	browser := newBrowser(t)
	do(t, browser, "submit a text",
		chromedp.Navigate(page.URL+"/"),
		waitText("#connection", "Live."),
		// Every status the item shows, in order, as the person sees them.
		chromedp.Evaluate[chromedp.Void](`window.seen = [];
			new MutationObserver(() => {
				const li = document.querySelector("#items li");
				const s = li && li.querySelector(".badge").textContent;
				if (s && window.seen[window.seen.length - 1] !== s) window.seen.push(s);
			}).observe(document.getElementById("items"),
				{subtree: true, childList: true, characterData: true, attributes: true});`),
		chromedp.SetValue(chromedp.ID("author"), "e2e-author"),
		chromedp.SetValue(chromedp.ID("content"), "Alice flew from London to Paris with Bob. Bob is not stupid."),
		chromedp.Click(chromedp.ID("send")),
		chromedp.WaitVisible(chromedp.CSS(`#items li[data-status="ANALYZED"]`)),
	)
	badge := get(t, browser, chromedp.Text(chromedp.CSS("#items li .badge")))
	summary := get(t, browser, chromedp.Text(chromedp.CSS("#items li .summary")))
	entities := get(t, browser, chromedp.Text(chromedp.CSS("#items li .entities")))
	seen := get(t, browser, chromedp.Evaluate[[]string](`window.seen`))
	contentID := get(t, browser, chromedp.AttributeValue(chromedp.CSS("#items li"), "data-content-id")).Value
	errorLine := get(t, browser, chromedp.Text(chromedp.ID("error")))

	t.Logf("the page showed %q; badge %q, %q, entities %q", seen, badge, summary, entities)
	if len(seen) == 0 || seen[0] != "under review" {
		t.Errorf("the page first showed %q, want \"under review\"", seen)
	}
	if badge != "analyzed: toxic" {
		t.Errorf("badge %q, want \"analyzed: toxic\" (the text has a lemma of the lexicon)", badge)
	}
	if !strings.HasSuffix(summary, " tokens") || summary == "? tokens" {
		t.Errorf("summary %q, want the token count", summary)
	}
	if !strings.Contains(entities, "Paris · GPE") {
		t.Errorf("entities %q do not name Paris as a place", entities)
	}
	if errorLine != "" {
		t.Errorf("the page shows an error: %s", errorLine)
	}

	// The projector folded the same result into the read model.
	var shown []string
	for _, e := range waitRow(t, db, contentID) {
		shown = append(shown, e[0]+" · "+e[1])
	}
	if strings.Join(shown, "\n") != entities {
		t.Errorf("the read model's entities %q, the page's %q", shown, entities)
	}

	// A page opened later gets the current status at once.
	late, cancel := chromedp.NewContext(browser)
	defer cancel()
	// The tab lives as long as the context of its first action.
	if err := chromedp.Do(late); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	do(t, late, "open the content in a new tab",
		chromedp.Navigate(page.URL+"/?watch="+url.QueryEscape(contentID)),
		chromedp.WaitVisible(chromedp.CSS(`#items li[data-status="ANALYZED"]`)),
	)
	if lateBadge := get(t, late, chromedp.Text(chromedp.CSS("#items li .badge"))); lateBadge != badge {
		t.Errorf("the late page shows %q, want %q", lateBadge, badge)
	}
}

// setting returns the environment variable name, or def.
func setting(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// start runs a program for the test's duration, its output in a log file
// whose end is printed when the test fails. It is stopped with SIGTERM,
// then SIGKILL.
func start(t *testing.T, name, path string, dir *string, env ...string) {
	t.Helper()
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(abs); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	startCmd(t, name, exec.Command(abs), dir, env...)
}

func startCmd(t *testing.T, name string, cmd *exec.Cmd, dir *string, env ...string) {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), env...)
	if dir != nil {
		cmd.Dir = *dir
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			t.Logf("last output of %s:\n%s", name, b)
		}
	})
}

// startLaravel serves the Laravel example with PHP's built-in server on
// a free port and returns its URL once it answers.
func startLaravel(t *testing.T, dir, sidecarHTTP string) string {
	t.Helper()
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	startCmd(t, "laravel", exec.Command("php", "-S", addr, "-t", filepath.Join(abs, "public")), &abs,
		"EVENTSTORE_URL="+sidecarHTTP, "APP_ENV=local", "LOG_CHANNEL=stderr")
	base := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		// An unknown content id answers 404 once the framework boots.
		res, err := http.Get(base + "/content/00000000-0000-4000-8000-000000000000")
		if err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusNotFound {
				return base
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("laravel did not answer on %s: %v", base, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// newBrowser starts a headless Chromium with a fresh profile.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(setting("E2E_CHROMIUM", "/usr/bin/chromium")),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(900, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	// The first action starts the browser; it must not have a timeout.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return bctx
}

// stepTimeout bounds one step in the browser.
const stepTimeout = 90 * time.Second

// do runs browser actions as one step, failing the test with what the
// page shows when one of them fails.
func do(t *testing.T, ctx context.Context, step string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(sctx, actions...); err != nil {
		t.Fatalf("%s: %v; the page shows:\n%s", step, err, pageText(ctx))
	}
}

// get runs one browser action and returns its value.
func get[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(sctx, a)
	if err != nil {
		t.Fatalf("read the page: %v; it shows:\n%s", err, pageText(ctx))
	}
	return v
}

// pageText is the text of the page, for a failure's report.
func pageText(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	text, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
	return text
}

// waitText waits until the element's text is want.
func waitText(sel, want string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.querySelector(%q).textContent === %q`, sel, want),
		chromedp.WithPollingTimeout(60*time.Second))
}

// waitRow waits until the projector's row of id is ANALYZED and returns
// its entities.
func waitRow(t *testing.T, db *pgxpool.Pool, id string) [][2]string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var status string
		var analysis struct {
			Entities   [][2]string `json:"entities"`
			TokenCount int         `json:"token_count"`
		}
		err := db.QueryRow(context.Background(),
			`SELECT status, analysis FROM content WHERE id = $1`, id).Scan(&status, &analysis)
		if err == nil && status == "ANALYZED" && analysis.TokenCount > 0 {
			return analysis.Entities
		}
		if time.Now().After(deadline) {
			t.Fatalf("the read model's row of %s: status %q, err %v; want ANALYZED with a token count", id, status, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

package admin

import (
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestDashboardScreenshot writes a PNG of the overview with a day of
// realistic records to the path in PORTCULLIS_SCREENSHOT (the README shows
// docs/dashboard.png):
//
//	PORTCULLIS_SCREENSHOT=$PWD/docs/dashboard.png go test ./admin -run Screenshot
func TestDashboardScreenshot(t *testing.T) {
	out := os.Getenv("PORTCULLIS_SCREENSHOT")
	if out == "" {
		t.Skip("set PORTCULLIS_SCREENSHOT=path/to/dashboard.png to write the screenshot")
	}
	ctx, _ := browser(t, 40*time.Second, 1400, 1000)
	env := newEnv(t)
	insertAll(t, env.store, genEntries(40000, testNow, 24*time.Hour, 2026))
	base := serve(t, env)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(chromedp.ID("login-form")),
		chromedp.SendKeys(chromedp.ID("username"), testUser),
		chromedp.SendKeys(chromedp.ID("password"), testPassword),
		chromedp.Click(chromedp.ID("login-submit")),
		chromedp.WaitVisible(chromedp.ID("chart")),
	); err != nil {
		t.Fatal(err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG, lossless
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%d bytes)", out, len(png))
}

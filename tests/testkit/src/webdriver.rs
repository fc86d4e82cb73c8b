//! Headless Chromium driven over the W3C WebDriver protocol (chromedriver).
//!
//! The protocol is HTTP + JSON, spoken here with the hyper client the other
//! tests use. The WebDriver client crates pull in second versions of half a
//! dozen crates (http 0.2, cookie, icu, thiserror 1), which this workspace
//! keeps out of its lock file.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpStream;

const CHROMIUM: &str = "/usr/bin/chromium";

/// One headless browser window.
pub struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
}

impl Browser {
    /// Starts chromedriver on a free port and opens a headless session.
    pub async fn start() -> Browser {
        let mut driver = Command::new("chromedriver")
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            // Its own process group, so that a failed test can take the
            // browser down with the driver.
            .process_group(0)
            .spawn()
            .expect(
                "cannot start chromedriver: install Debian's `chromium` and `chromium-driver` \
                 (`.ci/run` and `scripts/test` do as root)",
            );
        let stdout = driver.stdout.take().expect("stdout");
        let port = tokio::task::spawn_blocking(move || {
            let mut lines = BufReader::new(stdout).lines();
            let port = lines.by_ref().map_while(Result::ok).find_map(|line| {
                line.split("started successfully on port ")
                    .nth(1)
                    .and_then(|rest| rest.trim_end_matches('.').trim().parse::<u16>().ok())
            });
            // Keep draining so chromedriver never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            port
        });
        // A driver that never says its port fails the test instead of
        // hanging it.
        let port = match tokio::time::timeout(Duration::from_secs(60), port).await {
            Ok(port) => port.unwrap(),
            Err(_) => None,
        };
        let Some(port) = port else {
            kill_group(&mut driver);
            panic!("chromedriver did not report its port");
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": CHROMIUM,
                        "args": [
                            "--headless=new",
                            "--no-sandbox",
                            "--disable-gpu",
                            "--disable-dev-shm-usage",
                            "--disable-background-networking",
                            "--disable-extensions",
                            "--no-first-run",
                            "--window-size=1400,1000",
                        ],
                    },
                },
            },
        });
        let mut browser = Browser {
            driver,
            addr,
            session: String::new(),
        };
        let reply = browser.send("POST", "/session", Some(capabilities)).await;
        browser.session = reply["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {reply}"))
            .to_owned();
        browser
    }

    async fn send(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let stream = TcpStream::connect(self.addr)
            .await
            .expect("connect to chromedriver");
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(connection);
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string())
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .expect("request");
        let response = tokio::time::timeout(Duration::from_secs(60), sender.send_request(request))
            .await
            .expect("chromedriver answers within a minute")
            .expect("response");
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        assert!(
            status.is_success(),
            "WebDriver {method} {path}: {status} {value}"
        );
        value["value"].clone()
    }

    fn path(&self, tail: &str) -> String {
        format!("/session/{}/{tail}", self.session)
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&self, url: &str) {
        self.send("POST", &self.path("url"), Some(json!({ "url": url })))
            .await;
    }

    /// Runs `script` (a function body: `return ...;`) in the page.
    pub async fn eval(&self, script: &str) -> Value {
        self.send(
            "POST",
            &self.path("execute/sync"),
            Some(json!({ "script": script, "args": [] })),
        )
        .await
    }

    /// Polls `script` until it returns something other than `null`/`false`,
    /// and returns it with how long that took; panics after `limit`.
    pub async fn wait_for(&self, what: &str, script: &str, limit: Duration) -> (Value, Duration) {
        let start = Instant::now();
        loop {
            let value = self.eval(script).await;
            if !(value.is_null() || value == Value::Bool(false)) {
                return (value, start.elapsed());
            }
            if start.elapsed() > limit {
                let shown = self
                    .eval("return document.body ? document.body.innerText : '';")
                    .await;
                panic!(
                    "the page did not show {what} within {limit:?}; it shows:\n{}",
                    shown.as_str().unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Saves a PNG of the window.
    /// What `script` reads on the dashboard in the first snapshot the
    /// server measured after `after_ms` (Unix ms, the clock the server in
    /// this process stamps with), read in the same turn of the page. Every
    /// such snapshot shows whatever happened before `after_ms`, so the
    /// caller asserts on it without waiting for it to change: a page that
    /// lagged behind the server, or showed stale numbers, fails. Also how
    /// long after `after_ms` the page showed it, in ms (printed with the
    /// server's delay).
    pub async fn shown_after(&self, what: &str, after_ms: u64, script: &str) -> (Value, u64) {
        let probe = format!(
            "const shown = document.documentElement.dataset; \
             if (!(Number(shown.atMs) > {after_ms})) return null; \
             return {{ atMs: Number(shown.atMs), shownMs: Number(shown.shownMs), \
                       value: (() => {{ {script} }})() }};"
        );
        let (shown, _) = self.wait_for(what, &probe, crate::PATIENCE).await;
        let measured = shown["atMs"].as_u64().unwrap_or(0).saturating_sub(after_ms);
        let displayed = shown["shownMs"]
            .as_u64()
            .unwrap_or(0)
            .saturating_sub(after_ms);
        eprintln!(
            "{what}: measured {measured} ms and on the page {displayed} ms after it happened"
        );
        (shown["value"].clone(), displayed)
    }

    pub async fn screenshot(&self, to: &Path) {
        let encoded = self.send("GET", &self.path("screenshot"), None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().expect("base64 text"))
            .expect("base64");
        if let Some(dir) = to.parent() {
            std::fs::create_dir_all(dir).expect("artifact directory");
        }
        std::fs::write(to, png).expect("write the screenshot");
    }

    /// Ends the session (closing the browser) and stops the driver.
    pub async fn close(mut self) {
        let path = format!("/session/{}", self.session);
        let _ =
            tokio::time::timeout(Duration::from_secs(10), self.send("DELETE", &path, None)).await;
        self.session.clear();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        kill_group(&mut self.driver);
    }
}

/// Kills the driver's whole process group: the driver and the browser it
/// started.
fn kill_group(driver: &mut Child) {
    let _ = Command::new("kill")
        .args(["-s", "KILL", "--", &format!("-{}", driver.id())])
        .status();
    let _ = driver.wait();
}

/// A script that reads one number of `pool`'s card on the dashboard, as the
/// page shows it (`null` before the card is there).
pub fn pool_stat(pool: &str, key: &str) -> String {
    format!(
        "const c = document.querySelector('[data-pool=\"{pool}\"]'); \
         if (!c) return null; \
         const d = c.querySelector('[data-k=\"{key}\"] dd'); return d ? d.textContent : null;"
    )
}

//! The browser the dashboard tests drive: headless Chromium over WebDriver, against a
//! small page served by the test itself (navigation, Cyrillic text, forms, scripts,
//! cookies, downloads, dialogs and screenshots all work before a dashboard test uses
//! them).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::thread;
use sverka_tests::browser::Browser;

/// Serves a fixed set of pages on 127.0.0.1 until the test ends.
fn serve_pages() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let mut header = String::new();
            while reader.read_line(&mut header).is_ok_and(|read| read > 2) {
                header.clear();
            }
            let path = request_line.split(' ').nth(1).unwrap_or("/").to_owned();
            let (content_type, extra, body): (&str, &str, &[u8]) = match path.as_str() {
                "/" => (
                    "text/html; charset=utf-8",
                    "Set-Cookie: session=abc; HttpOnly; SameSite=Strict\r\n",
                    "<!doctype html><title>Сверка</title><h1 id=greeting>Привет, школа</h1>\
                     <input id=name><button id=go onclick=\"document.getElementById('out')\
                     .textContent='Здравствуйте, '+document.getElementById('name').value\">\
                     Go</button><p id=out></p><a id=export href=/table.csv download>CSV</a>"
                        .as_bytes(),
                ),
                "/table.csv" => (
                    "text/csv; charset=utf-8",
                    "Content-Disposition: attachment; filename=\"table.csv\"\r\n",
                    "\u{feff}Школа;ПК\r\nШкола 1;30\r\n".as_bytes(),
                ),
                "/dialog" => (
                    "text/html; charset=utf-8",
                    "",
                    b"<!doctype html><script>alert('injected')</script>",
                ),
                _ => ("text/plain", "", b"not found"),
            };
            let mut stream = reader.into_inner();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(body);
        }
    });
    address
}

#[test]
fn headless_chromium_navigates_fills_forms_downloads_and_reports_dialogs() {
    let address = serve_pages();
    let browser = Browser::start();

    browser.goto(&format!("http://{address}/"));
    assert_eq!(browser.title(), "Сверка");
    assert_eq!(browser.text("#greeting"), "Привет, школа");

    browser.fill("#name", "Иван");
    browser.click("#go");
    browser.wait_for("document.getElementById('out').textContent.length > 0");
    assert_eq!(browser.text("#out"), "Здравствуйте, Иван");

    let cookies = browser.cookies();
    let session = cookies
        .iter()
        .find(|cookie| cookie["name"] == "session")
        .expect("the page's cookie");
    assert_eq!(session["value"], "abc");
    assert_eq!(session["httpOnly"], true);
    assert_eq!(browser.cookie("session").as_deref(), Some("abc"));
    assert!(browser.alert_text().is_none(), "no dialog is open yet");

    let shot = browser.screenshot("browser-self-test");
    assert!(std::fs::metadata(&shot).expect("screenshot").len() > 1000);

    browser.click("#export");
    let csv = std::fs::read(browser.wait_for_download("table.csv")).expect("download");
    assert_eq!(csv, "\u{feff}Школа;ПК\r\nШкола 1;30\r\n".as_bytes());

    browser.goto(&format!("http://{address}/dialog"));
    assert_eq!(browser.alert_text().as_deref(), Some("injected"));
}

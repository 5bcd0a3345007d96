"""The home page and its stylesheet (served by the app, no CDN)."""

HTML_HEADERS = ("Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy")


def test_home_explains_the_url_format_with_security_headers(make_app, symbols_dir):
    app = make_app(symbol_urls=str(symbols_dir))
    r = app.get("/", status=200)
    assert r.headers["Content-Type"].startswith("text/html")
    for name in HTML_HEADERS:
        assert name in r.headers
    assert r.headers["X-Frame-Options"] == "DENY"
    assert "Debug: true" in r.text and "_refresh" in r.text
    assert 'href="/missingsymbols.csv"' in r.text
    assert "Set-Cookie" not in r.headers
    css = r.html.find("link", rel="stylesheet")["href"]
    assert css.startswith("/admin/")
    assert app.get(css, status=200).headers["Content-Type"].startswith("text/css")


def test_home_rejects_other_methods(make_app, symbols_dir):
    app = make_app(symbol_urls=str(symbols_dir))
    r = app.post("/", status=405)
    assert r.headers["Allow"] == "GET, HEAD"

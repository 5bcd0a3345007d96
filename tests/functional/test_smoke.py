from tests.conftest import DEBUG_ID, PRIVATE_BUCKET, put_file, put_public


def test_local_found_and_served(make_app, symbols_dir):
    put_file(symbols_dir, f"v1/xul.pdb/{DEBUG_ID}/xul.sym", b"MODULE xul\n")
    app = make_app(symbol_urls=str(symbols_dir))
    r = app.get(f"/xul.pdb/{DEBUG_ID.lower()}/xul.sym", status=302)
    assert r.headers["Location"] == f"http://symbols.example.com/__files__/0/v1/xul.pdb/{DEBUG_ID}/xul.sym"
    assert r.headers["X-Symbol-Lookup"] == "found"
    f = app.get(r.headers["Location"].replace("http://symbols.example.com", ""), status=200)
    assert f.body == b"MODULE xul\n"
    assert f.headers["Content-Type"] == "application/octet-stream"


def test_s3_private_memcached(make_app, s3, memcached_clean):
    s3.put(PRIVATE_BUCKET, f"pfx/v1/xul.pdb/{DEBUG_ID}/xul.sym")
    app = make_app(symbol_urls=s3.url(PRIVATE_BUCKET, "pfx"), memcached_servers=memcached_clean.address)
    r = app.get(f"/xul.pdb/{DEBUG_ID}/xul.sym", status=302)
    assert "X-Amz-Signature=" in r.headers["Location"]
    assert r.headers["Cache-Control"] == "no-store"
    app.get(f"/xul.pdb/{DEBUG_ID}/nope.sym", status=404)
    app.head(f"/xul.pdb/{DEBUG_ID}/xul.sym", status=200)


def test_s3_public(make_app, s3):
    put_public(s3, f"v1/xul.pdb/{DEBUG_ID}/x +汉.sym")
    app = make_app(symbol_urls=s3.url("tecken-public", public=True))
    r = app.get(f"/xul.pdb/{DEBUG_ID}/x%20+%E6%B1%89.sym", status=302)
    assert r.headers["Location"] == f"{s3.endpoint}/tecken-public/v1/xul.pdb/{DEBUG_ID}/x%20%2B%E6%B1%89.sym"

"""The dashboard in a real browser against a real server: what an artist and an operator do."""

from __future__ import annotations

import base64
import json
import re
import urllib.request
from pathlib import Path
from typing import Any

from consentune.errors import VerificationFailed
from consentune.ledger import verify_receipt, verify_receipt_pages
from tests.e2e.conftest import DemoServer, screenshot, sign_in

ARTIST = "The Night Sequencers"
OTHER = "Aurora Vale"


# Form controls with no label, no aria label and (for buttons) no text.
UNLABELLED = """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea, button')]
    .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                  && !el.getAttribute('aria-labelledby') && !(el.tagName === 'BUTTON' && el.textContent.trim()))
    .map(el => el.outerHTML)"""

# Text whose colour against its effective background is under WCAG AA's 4.5:1 (3:1 for bold >= 18.66px).
LOW_CONTRAST = """() => {
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const channel = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  const lum = ([r, g, b]) => 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const c = rgb(getComputedStyle(el).backgroundColor);
      if (c.length === 3 || c[3] > 0) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const bad = [];
  for (const el of document.querySelectorAll("body *")) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own || !el.getClientRects().length || el.closest("svg")) continue;
    const style = getComputedStyle(el);
    const [a, b] = [lum(rgb(style.color)), lum(background(el))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const large = parseFloat(style.fontSize) >= 18.66 && Number(style.fontWeight) >= 700;
    if (ratio < (large ? 3 : 4.5)) bad.push(`${el.tagName}.${el.className}: ${ratio.toFixed(2)}`);
  }
  return bad;
}"""


def _entry_sequences(page: Any, *, action: str, purpose: str) -> set[int]:
    rows = page.locator(f'tr.entry[data-action="{action}"][data-purpose="{purpose}"]')
    return {int(s) for s in rows.evaluate_all("rows => rows.map(r => r.dataset.sequence)")}


def test_root_url_lands_on_sign_in_and_a_bad_key_is_refused(page: Any, demo_server: DemoServer) -> None:
    page.goto(demo_server.url)
    assert page.url.endswith("/dashboard/sign-in")
    page.get_by_label("API key").fill("ctn_nope_nope")
    page.get_by_role("button", name="Sign in").click()
    assert "unknown or revoked" in page.get_by_role("alert").inner_text()
    screenshot(page, "sign-in")


def test_artist_changes_consent_and_sees_the_ledger_entry(page: Any, demo_server: DemoServer) -> None:
    sign_in(page, demo_server, demo_server.artist_keys[ARTIST])
    assert page.get_by_role("heading", level=1).inner_text() == ARTIST
    screenshot(page, "artist-home")
    track = demo_server.tracks[ARTIST][1]
    page.goto(f"{demo_server.url}/dashboard/tracks/{track}?purpose=organize")
    before = _entry_sequences(page, action="consent-set", purpose="organize")

    page.goto(f"{demo_server.url}/dashboard/artists/{demo_server.artist_ids[ARTIST]}")
    card = page.locator("#purpose-organize")
    assert card.locator(".badge.state").inner_text() == "On"
    card.get_by_label("Off").check()
    card.get_by_role("button", name="Save organize").click()
    assert "organize is now off" in page.get_by_role("status").inner_text()
    assert page.locator("#purpose-organize .badge.state").inner_text() == "Off"

    page.goto(f"{demo_server.url}/dashboard/tracks/{track}")
    page.get_by_label("Purpose").select_option("organize")
    page.get_by_role("button", name="Show").click()
    new = _entry_sequences(page, action="consent-set", purpose="organize") - before
    assert len(new) == 1, "exactly one new consent-set entry for this track"
    row = page.locator(f'tr.entry[data-sequence="{new.pop()}"]')
    assert "deny for all tracks" in row.inner_text()
    assert page.locator("#tp-organize .badge.state").inner_text() == "Denied"
    screenshot(page, "track-timeline")


def test_track_level_choice_is_logged_for_that_track(page: Any, demo_server: DemoServer) -> None:
    sign_in(page, demo_server, demo_server.artist_keys[ARTIST])
    track = demo_server.tracks[ARTIST][2]
    page.goto(f"{demo_server.url}/dashboard/tracks/{track}?purpose=train-ai")
    assert page.locator("#tp-train-ai .badge.state").inner_text() == "Denied"
    page.get_by_role("button", name="Allow train-ai").click()
    assert "train-ai is now allowed for this track" in page.get_by_role("status").inner_text()
    page.get_by_label("Purpose").select_option("train-ai")
    page.get_by_role("button", name="Show").click()
    assert f"allow for track {track}" in page.locator("tr.entry").first.inner_text()


def test_verify_a_receipt_in_the_browser_and_on_the_server(page: Any, demo_server: DemoServer) -> None:
    sign_in(page, demo_server, demo_server.artist_keys[ARTIST])
    page.goto(f"{demo_server.url}/dashboard/tracks/{demo_server.tracks[ARTIST][0]}")
    page.get_by_role("button", name="Verify in this browser").click()
    result = page.locator("#verify-ok")
    result.wait_for()
    assert re.search(r"Verified in this browser: all \d+ uses", result.inner_text())
    page.get_by_role("button", name="Verify on the server").click()
    assert re.search(r"Verified on the server: all \d+ uses", page.locator("#verify-ok").inner_text())
    screenshot(page, "track-verified")


def test_download_a_receipt_that_verifies_offline_and_a_tampered_one_fails(
    page: Any, demo_server: DemoServer, tmp_path: Path
) -> None:
    sign_in(page, demo_server, demo_server.artist_keys[ARTIST])
    track = demo_server.tracks[ARTIST][0]
    page.goto(f"{demo_server.url}/dashboard/tracks/{track}")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download receipt").click()
    saved = tmp_path / "receipt.json"
    download.value.save_as(saved)
    key = page.locator("#verifier-key").text_content()
    assert key == demo_server.verifier_key
    verified = verify_receipt(saved.read_bytes(), verifier_key=key)
    assert verified.track == track and verified.entries

    receipt = json.loads(saved.read_bytes())
    receipt["entries"][0]["entry"]["reason"] += "!"
    tampered = tmp_path / "tampered.json"
    tampered.write_bytes(json.dumps(receipt, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode())
    page.locator("summary", has_text="Check a receipt yourself").click()
    page.get_by_label("Receipt file to check").set_input_files(str(tampered))
    failed = page.locator("#verify-failed")
    failed.wait_for()
    assert "does not lead to the signed root" in failed.inner_text()
    page.get_by_label("Receipt file to check").set_input_files(str(saved))
    page.locator("#verify-ok").wait_for()


def test_another_artists_pages_are_refused(page: Any, demo_server: DemoServer) -> None:
    sign_in(page, demo_server, demo_server.artist_keys[ARTIST])
    others_track = demo_server.tracks[OTHER][0]
    for path, status in (
        (f"/dashboard/tracks/{others_track}", 404),
        (f"/dashboard/tracks/{others_track}/receipt", 404),
        (f"/dashboard/artists/{demo_server.artist_ids[OTHER]}", 403),
        (f"/dashboard/artists/{demo_server.artist_ids[OTHER]}/reach", 403),
        ("/dashboard/operator", 403),
    ):
        response = page.goto(demo_server.url + path)
        assert response.status == status, path
        assert OTHER not in page.content()
    screenshot(page, "refused")


def test_reach_page_plots_plays_listeners_and_impressions(page: Any, demo_server: DemoServer) -> None:
    sign_in(page, demo_server, demo_server.artist_keys[ARTIST])
    page.get_by_role("link", name="Reach", exact=True).click()
    assert int(page.locator("#total-plays").inner_text()) > 0
    assert int(page.locator("#total-listeners").inner_text()) > 0
    assert int(page.locator("#total-impressions").inner_text()) > 0
    for chart in ("plays", "listeners", "impressions"):
        svg = page.locator(f"svg#chart-{chart}")
        assert svg.get_attribute("role") == "img"
        assert svg.locator("rect.bar").count() == 30
    screenshot(page, "reach")


def test_operator_console_for_admin(page: Any, demo_server: DemoServer) -> None:
    sign_in(page, demo_server, demo_server.admin_key)
    assert page.get_by_role("heading", level=1).inner_text() == "Operator console"
    assert page.locator("#terms-table tbody tr").count() >= 1
    assert page.locator("#checkpoints tbody tr").count() >= 1
    assert page.locator("#purge-jobs tbody tr").count() >= 1
    page.get_by_role("button", name="Run a full audit now").click()
    assert "Audit passed" in page.locator("#audit-result").inner_text()
    assert page.locator('[data-capability="fraud-queue"][data-endpoint="/v1/fraud/alerts"]').count() == 1
    card = page.locator(".claim-card", has_text="Pulse Grid (nightcore edit)")
    assert card.count() == 1  # the demo's sped-up copy awaits review
    assert "Confirm: it is a copy" in card.inner_text() and "Tape Pirate" in card.inner_text()
    assert page.evaluate(UNLABELLED) == [] and page.evaluate(LOW_CONTRAST) == []
    screenshot(page, "operator")
    row = page.locator("#blocks tr", has_text=demo_server.block_subject)
    row.get_by_role("button", name=re.compile("Unblock")).click()
    assert "lifted" in page.locator("#blocks tr", has_text=demo_server.block_subject).inner_text()


def test_every_control_has_a_label_and_the_keyboard_works(page: Any, demo_server: DemoServer) -> None:
    page.goto(f"{demo_server.url}/dashboard/sign-in")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")  # the skip link moves focus to the main content
    assert page.evaluate("document.activeElement.id") == "main"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "api_key"
    page.keyboard.type(demo_server.artist_keys[ARTIST])
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/dashboard/artists/"))
    pages = [
        page.url,
        f"{demo_server.url}/dashboard/tracks/{demo_server.tracks[ARTIST][0]}",
        f"{demo_server.url}/dashboard/artists/{demo_server.artist_ids[ARTIST]}/reach",
    ]
    for url in pages:
        page.goto(url)
        assert page.evaluate(UNLABELLED) == [], url
        assert page.evaluate(LOW_CONTRAST) == [], url
        assert page.locator("h1").count() == 1
        assert page.locator("main#main").count() == 1
    # a consent choice can be changed with the keyboard alone
    page.goto(pages[0])
    page.locator("#ai-input-off").focus()
    page.keyboard.press("ArrowLeft")  # radio group: moves to and selects "On"
    assert page.locator("#ai-input-on").is_checked()


def _receipt(server: DemoServer, track: str) -> bytes:
    request = urllib.request.Request(
        f"{server.url}/v1/tracks/{track}/receipt?format=v1", headers={"Authorization": f"Bearer {server.admin_key}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        data: bytes = response.read()
    return data


def _api(server: DemoServer, path: str, *, key: str, body: Any = None) -> Any:
    request = urllib.request.Request(
        f"{server.url}{path}",
        data=None if body is None else json.dumps(body).encode(),
        method="GET" if body is None else "PUT",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _mutations(data: bytes, key: str) -> dict[str, tuple[bytes, str]]:
    receipt = json.loads(data)

    def changed(edit: Any) -> bytes:
        copy = json.loads(data)
        edit(copy)
        return _canonical(copy)

    note = receipt["checkpoint"]
    head, sig = note.rsplit(" ", 1)
    flipped = sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]
    name, key_id, raw = key.split("+", 2)
    return {
        "original": (data, key),
        "reason changed": (changed(lambda r: r["entries"][0]["entry"].update(reason="nothing happened")), key),
        "entries reordered": (changed(lambda r: r["entries"].reverse()), key),
        "proof shortened": (changed(lambda r: r["entries"][-1]["proof"].pop()), key),
        "signature altered": (changed(lambda r: r.update(checkpoint=f"{head} {flipped}")), key),
        "not canonical": (data.replace(b'{"checkpoint"', b'{ "checkpoint"', 1), key),
        "other subject": (changed(lambda r: r["subject"].update(purpose="train-ai")), key),
        "wrong key id": (data, f"{name}+{'0' * 8 if key_id != '0' * 8 else '1' * 8}+{raw}"),
    }


def test_browser_verifier_agrees_with_the_python_verifier(page: Any, demo_server: DemoServer) -> None:
    data = _receipt(demo_server, demo_server.tracks["Lumen Drift"][0])
    assert "😀".encode() in data and "\u2028".encode() in data  # the tricky entry is in this receipt
    page.goto(f"{demo_server.url}/dashboard/sign-in")
    check = """async ([text, key]) => {
        try { await verifyReceipt(new TextEncoder().encode(text), key); return "ok"; }
        catch (e) { return "rejected: " + e.message; } }"""
    for case, (receipt, key) in _mutations(data, demo_server.verifier_key).items():
        try:
            verify_receipt(receipt, verifier_key=key)
            python = "ok"
        except VerificationFailed:
            python = "rejected"
        browser = page.evaluate(check, [receipt.decode(), key])
        assert browser.split(":")[0] == python, (case, browser)
        assert (python == "ok") == (case == "original"), case


def test_a_sped_up_reupload_shows_on_the_original_track(page: Any, demo_server: DemoServer) -> None:
    """The demo's "nightcore edit" by another account is claimed at ingest; its artist resolves it on the track."""
    sign_in(page, demo_server, demo_server.artist_keys[ARTIST])
    page.get_by_role("link", name="Pulse Grid", exact=True).first.click()
    page.wait_for_url(re.compile(r"/dashboard/tracks/"))  # count() does not wait for the navigation
    page.wait_for_load_state()
    card = page.locator(".claim-card")
    card.first.wait_for()
    assert card.count() == 1
    text = card.inner_text()
    assert "“Pulse Grid (nightcore edit)”, uploaded by Tape Pirate, copies your “Pulse Grid”" in text
    assert (
        re.search(r"played [3-5] % faster", text) and "not streamed or recommended until the claim is resolved" in text
    )
    assert "query_start_s" not in page.content()
    screenshot(page, "track-reupload")


def test_browser_consistency_check_agrees_with_the_python_one(page: Any, demo_server: DemoServer) -> None:
    """An old receipt's checkpoint must be a prefix of a later log; the browser checks the RFC 9162 proof."""
    from consentune.ledger.checkpoint import verify_checkpoint
    from consentune.ledger.merkle import verify_consistency

    track = demo_server.tracks["Lumen Drift"][1]
    old = verify_checkpoint(json.loads(_receipt(demo_server, track))["checkpoint"], demo_server.verifier_key)
    _api(
        demo_server,
        "/v1/me/consent",
        key=demo_server.artist_keys["Lumen Drift"],
        body={"purpose": "ai-input", "allow": True, "track_id": track},
    )
    new = verify_checkpoint(json.loads(_receipt(demo_server, track))["checkpoint"], demo_server.verifier_key)
    assert new.size > old.size
    proof = _api(demo_server, f"/v1/ledger/proof/consistency?old={old.size}&new={new.size}", key=demo_server.admin_key)
    good = [base64.b64decode(h) for h in proof["proof"]]
    bad = [good[0][:-1] + bytes([good[0][-1] ^ 1]), *good[1:]]
    page.goto(f"{demo_server.url}/dashboard/sign-in")
    check = """async ([m, n, r1, r2, proof]) => {
        const raw = (t) => Uint8Array.from(atob(t), (c) => c.charCodeAt(0));
        try { await verifyConsistency(m, n, raw(r1), raw(r2), proof.map(raw)); return "ok"; }
        catch (e) { return "rejected: " + e.message; } }"""
    cases = {
        "good": (old.root_hash, new.root_hash, good),
        "altered proof": (old.root_hash, new.root_hash, bad),
        "other old root": (new.root_hash, new.root_hash, good),
        "shortened proof": (old.root_hash, new.root_hash, good[:-1]),
    }
    for case, (r1, r2, hashes) in cases.items():
        try:
            verify_consistency(old_size=old.size, new_size=new.size, old_root=r1, new_root=r2, proof=hashes)
            python = "ok"
        except VerificationFailed:
            python = "rejected"
        b64 = [base64.b64encode(h).decode() for h in (r1, r2, *hashes)]
        browser = page.evaluate(check, [old.size, new.size, b64[0], b64[1], b64[2:]])
        assert browser.split(":")[0] == python, (case, browser)
        assert (python == "ok") == (case == "good"), case


def _receipt_pages(server: DemoServer, track: str, *, limit: int) -> list[bytes]:
    pages: list[bytes] = []
    after, size = -1, ""
    while True:
        request = urllib.request.Request(
            f"{server.url}/v1/tracks/{track}/receipt?limit={limit}&after={after}{size}",
            headers={"Authorization": f"Bearer {server.admin_key}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            pages.append(response.read())
        page = json.loads(pages[-1])
        if page["page"]["next"] is None:
            return pages
        after, size = page["page"]["next"], f"&size={page['checkpoint'].splitlines()[1]}"


def _page_mutations(pages: list[bytes]) -> dict[str, list[bytes]]:
    def edit(number: int, change: Any) -> list[bytes]:
        copy = json.loads(pages[number])
        change(copy)
        return [*pages[:number], _canonical(copy), *pages[number + 1 :]]

    return {
        "original": pages,
        "reason changed": edit(0, lambda p: p["entries"][0].update(reason="nothing happened")),
        "entries reordered": edit(1, lambda p: p["entries"].reverse()),
        "proof shortened": edit(0, lambda p: p["proof"].pop()),
        "entry removed": edit(1, lambda p: p["entries"].pop(0)),
        "time not a date": edit(0, lambda p: p["entries"][0].update(time="2026-02-30T00:00:00.000000Z")),
        "cursor skips": edit(1, lambda p: p["page"].update(after=p["page"]["after"] + 1)),
        "pages swapped": [pages[1], pages[0], *pages[2:]],
        "last page dropped": pages[:-1],
        "not canonical": [pages[0].replace(b'{"checkpoint"', b'{ "checkpoint"', 1), *pages[1:]],
    }


def test_browser_verifies_paged_v2_receipts_like_the_python_verifier(page: Any, demo_server: DemoServer) -> None:
    track = demo_server.tracks["Lumen Drift"][0]
    pages = _receipt_pages(demo_server, track, limit=2)
    assert len(pages) >= 3  # the demo logs several uses of each track
    page.goto(f"{demo_server.url}/dashboard/sign-in")
    check = """async ([pages, key]) => {
        let i = 0;
        const next = async () => {
            if (i >= pages.length) throw new Rejected("no more pages");
            return new TextEncoder().encode(pages[i++]);
        };
        try { const r = await verifyPages(next, key); return `ok:${r.count}:${r.pages}`; }
        catch (e) { return "rejected: " + e.message; } }"""
    for case, mutated in _page_mutations(pages).items():
        try:
            verified = verify_receipt_pages(mutated, verifier_key=demo_server.verifier_key)
            python = f"ok:{verified.count}:{verified.pages}"
        except VerificationFailed:
            python = "rejected"
        browser = page.evaluate(check, [[p.decode() for p in mutated], demo_server.verifier_key])
        assert browser.split(":")[0] == python.split(":")[0], (case, browser)
        assert (python == browser) if case == "original" else python == "rejected", (case, browser)
    single = _receipt_pages(demo_server, track, limit=10_000)
    assert len(single) == 1
    one = """async ([text, key]) => { const r = await verifyReceiptFile(new TextEncoder().encode(text), key);
        return `${r.count}:${r.complete}`; }"""
    count = len(json.loads(single[0])["entries"])
    assert page.evaluate(one, [single[0].decode(), demo_server.verifier_key]) == f"{count}:true"
    assert page.evaluate(one, [pages[1].decode(), demo_server.verifier_key]) == "2:false"

"""The page in a real headless browser (Debian's chromium, driven through chromedriver)
against a real `ragqa serve` process with the real models and an API key: the key
prompt, an upload followed to the end of its job, a question answered from it with the
quote highlighted, one withheld with its reason, a document whose text holds HTML and a
script shown as text, and a delete. Screenshots of the main states go to tmp, or to
$PAGE_SCREENSHOTS (docs/page.md's come from docs/screenshots/)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
import pytest

from devkit.servers import wait_for
from tests.test_http import start_server as start_http_server

pytestmark = pytest.mark.integration

KEY = "page-key-81d2"
AUTH = {"Authorization": f"Bearer {KEY}"}
FACT = ("The Kellan Island lighthouse was finished in 1887. Its first keeper was Mara Voss, "
        "who kept the light burning for forty years.\n")
HOSTILE = ("The Orrin Vale observatory <b>opened</b> in 1904, with a telescope built by Ida Brandt "
           "<script>window.pwned = 1</script><img src=x onerror=\"window.pwned = 2\">.\n")
HARBOUR = ("The Brennock harbour wall was built in 1852 to a design by the engineer Tobias Renn. It is 640 metres "
           "long and shelters the fishing fleet from the westerly gales.\n")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


def start_server(base: Path, **settings: str):
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RAGQA_")},
           "RAGQA_INDEX": str(base / "index"), "RAGQA_API_KEY": KEY, **settings}
    return start_http_server(base, env)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("page")
    proc, log, url = start_server(base, RAGQA_CALIBRATION="off", RAGQA_MIN_CONFIDENCE="0.5",
                                 RAGQA_MAX_UPLOAD_MB=str(64 / 1024))
    yield {"url": url, "base": base}
    proc.terminate()
    proc.wait(60)
    log.close()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM or not CHROMEDRIVER:
        pytest.skip("no chromium and chromedriver (Debian: apt-get install chromium chromium-driver; .ci/run does)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1200,1400"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_script_timeout(30)
    yield driver
    driver.quit()


def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("PAGE_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def visible_text(driver, css: str) -> str:
    from selenium.webdriver.common.by import By

    return " ".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, css) if e.is_displayed())


def ask(driver, question: str, timeout: float = 120):
    from selenium.webdriver.common.by import By

    before = len(driver.find_elements(By.CSS_SELECTOR, "#conversation .turn"))
    box = driver.find_element(By.ID, "question")
    box.clear()
    box.send_keys(question)
    driver.find_element(By.ID, "ask-button").click()
    wait_for(lambda: len(driver.find_elements(By.CSS_SELECTOR, "#conversation .turn")) > before
             and driver.find_element(By.CSS_SELECTOR, "#conversation .turn .verdict").is_displayed(), timeout,
             f"the verdict on {question!r}: {visible_text(driver, '#ask-error')}")
    return driver.find_element(By.CSS_SELECTOR, "#conversation .turn")  # the newest is first


def upload(driver, path: Path):
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, "file-input").send_keys(str(path))
    wait_for(lambda: "ingested" in visible_text(driver, "#upload-status") or visible_text(driver, "#docs-error"),
             180, f"the upload of {path.name}")
    assert not visible_text(driver, "#docs-error")
    wait_for(lambda: path.stem in visible_text(driver, "#documents"), 30, f"{path.stem} in the list")


def test_the_page_asks_shows_the_evidence_and_why_and_manages_documents(server, browser, tmp_path):
    from selenium.webdriver.common.by import By

    out = shots(tmp_path)
    d = browser
    d.get(server["url"] + "/")
    # the key: asked for once, kept in the tab, never in the URL
    wait_for(lambda: d.find_element(By.ID, "key-form").is_displayed(), 30, "the key prompt")
    d.save_screenshot(str(out / "key.png"))
    d.find_element(By.ID, "key-input").send_keys(KEY)
    d.find_element(By.CSS_SELECTOR, "#key-form button").click()
    wait_for(lambda: "No documents yet" in visible_text(d, "#documents"), 30, "the empty document list")
    assert KEY not in d.current_url
    assert d.execute_script("return sessionStorage.getItem('ragqa-api-key')") == KEY

    fact = tmp_path / "lighthouse.txt"
    fact.write_text(FACT)
    upload(d, fact)

    turn = ask(d, "Who was the first keeper of the Kellan Island lighthouse?")
    assert "Answered" in turn.find_element(By.CSS_SELECTOR, ".outcome").text
    assert "Mara Voss" in turn.find_element(By.CSS_SELECTOR, ".draft").text
    quote = turn.find_element(By.CSS_SELECTOR, ".citations blockquote")
    assert "Mara Voss" in quote.find_element(By.TAG_NAME, "mark").text  # the quoted span, highlighted
    assert "1887" in quote.text  # inside the text around it
    assert "lighthouse" in turn.find_element(By.CSS_SELECTOR, ".citations .where").text
    assert "uncalibrated" in turn.find_element(By.CSS_SELECTOR, ".confidence .label").text
    turn.find_element(By.CSS_SELECTOR, ".signals summary").click()
    assert "grounding" in turn.find_element(By.CSS_SELECTOR, ".signals").text
    d.save_screenshot(str(out / "answered.png"))

    turn = ask(d, "What is the boiling point of liquid nitrogen in Antarctica?")
    assert "Withheld" in turn.find_element(By.CSS_SELECTOR, ".outcome").text
    reason = turn.find_element(By.CSS_SELECTOR, ".reason").text
    assert reason.startswith("Why: ") and len(reason) > 20
    d.save_screenshot(str(out / "withheld.png"))

    # document text is data: HTML and a script in it are shown as text, never run
    hostile = tmp_path / "observatory.txt"
    hostile.write_text(HOSTILE)
    upload(d, hostile)
    turn = ask(d, "Who built the telescope of the Orrin Vale observatory?")
    turn.find_element(By.CSS_SELECTOR, ".sources summary").click()
    shown = turn.find_element(By.CSS_SELECTOR, ".sources").text
    assert "<script>window.pwned = 1</script>" in shown and "<b>opened</b>" in shown and "<img src=x" in shown
    assert d.execute_script("return window.pwned") is None
    assert not turn.find_elements(By.CSS_SELECTOR, ".sources b, .sources script, .sources img, .citations b")

    # delete, with the confirmation
    row = next(li for li in d.find_elements(By.CSS_SELECTOR, "#documents li") if "observatory" in li.text)
    row.find_element(By.TAG_NAME, "button").click()
    d.switch_to.alert.accept()
    wait_for(lambda: "observatory" not in visible_text(d, "#documents"), 30, "the document gone from the list")
    assert "Deleted observatory" in visible_text(d, "#upload-status")
    docs = httpx.get(server["url"] + "/v1/documents", headers=AUTH).json()["documents"]
    assert [x["name"] for x in docs] == ["lighthouse"]


def test_errors_are_shown_in_words(server, browser, tmp_path):
    from selenium.webdriver.common.by import By

    d = browser
    d.get(server["url"] + "/")
    d.execute_script("sessionStorage.setItem('ragqa-api-key', 'not-the-key')")
    d.get(server["url"] + "/")
    wait_for(lambda: d.find_element(By.ID, "key-form").is_displayed(), 30, "the key prompt after a wrong key")
    assert "API key" in visible_text(d, "#docs-error")
    d.execute_script(f"sessionStorage.setItem('ragqa-api-key', '{KEY}')")
    d.get(server["url"] + "/")
    d.set_window_size(400, 900)  # a narrow screen: nothing wider than it
    assert d.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    d.set_window_size(1200, 1400)
    big = tmp_path / "big.txt"
    big.write_text("A sentence about nothing in particular. " * 4000)  # 160 KB, over the 64 KB limit
    d.find_element(By.ID, "file-input").send_keys(str(big))
    wait_for(lambda: "larger than this server accepts" in visible_text(d, "#docs-error"), 60, "the 413 in words")
    unsupported = tmp_path / "notes.xyz"
    unsupported.write_text("not a format ragqa reads")
    d.find_element(By.ID, "file-input").send_keys(str(unsupported))
    wait_for(lambda: visible_text(d, "#docs-error"), 60, "the upload's error")
    assert "notes.xyz" in visible_text(d, "#docs-error") or "could not" in visible_text(d, "#docs-error")


def test_with_the_defaults_the_page_answers_under_the_certificate_and_says_which(tmp_path_factory, browser):
    """What a new user sees with the defaults: the default reader's shipped calibration
    certifies a threshold for everyday questions; a question its documents answer is
    answered, the threshold is marked on the confidence bar, and the reason names the
    certificate's kind."""
    from selenium.webdriver.common.by import By

    proc, log, url = start_server(tmp_path_factory.mktemp("page-default"))
    try:
        job = httpx.post(url + "/v1/documents", headers=AUTH, files={"file": ("lighthouse.txt", FACT.encode(), "text/plain")})
        wait_for(lambda: httpx.get(url + f"/v1/jobs/{job.json()['job']['id']}", headers=AUTH).json()["state"] == "done",
                 120, "the upload's job")
        d = browser
        d.get(url + "/")
        d.execute_script(f"sessionStorage.setItem('ragqa-api-key', '{KEY}')")
        d.get(url + "/")
        wait_for(lambda: "lighthouse" in visible_text(d, "#documents"), 30, "the document list")
        turn = ask(d, "Who was the first keeper of the Kellan Island lighthouse?")
        assert "Answered" in turn.find_element(By.CSS_SELECTOR, ".outcome").text
        assert "certified for questions answerable from the documents" in turn.find_element(By.CSS_SELECTOR, ".reason").text
        label = turn.find_element(By.CSS_SELECTOR, ".confidence .label").text
        assert "calibrated" in label and "uncalibrated" not in label and "(marked)" in label
        assert "Mara Voss" in turn.find_element(By.CSS_SELECTOR, ".draft").text
    finally:
        proc.terminate()
        proc.wait(60)
        log.close()


def test_a_person_reviews_three_answers_and_answers_a_withheld_question(server, browser, tmp_path):
    """The Review panel: three answers drawn at random judged with one key each (counted for
    certification), a withheld question answered from the hand-off list, and the asker
    then given the person's answer."""
    from selenium.webdriver.common.by import By

    url = server["url"]
    job = httpx.post(url + "/v1/documents", headers=AUTH,
                     files={"file": ("harbour.txt", HARBOUR.encode(), "text/plain")}).json()["job"]
    wait_for(lambda: httpx.get(url + f"/v1/jobs/{job['id']}", headers=AUTH).json()["state"] == "done", 120, "the upload")
    for q in ("When was the Brennock harbour wall built?", "Who designed the Brennock harbour wall?",
              "How long is the Brennock harbour wall?", "What does the Brennock harbour shelter?"):
        httpx.post(url + "/v1/ask", headers=AUTH, json={"question": q}, timeout=120).raise_for_status()
    withheld = httpx.post(url + "/v1/ask", headers=AUTH, timeout=120,
                          json={"question": "What is the melting point of tungsten?"}).json()
    assert withheld["abstained"] and withheld["id"]
    before = httpx.get(url + "/v1/reviews/progress", headers=AUTH).json()["by_how"]["random"]

    d = browser
    d.get(url + "/")
    d.execute_script(f"sessionStorage.setItem('ragqa-api-key', '{KEY}')")
    d.get(url + "/")
    d.find_element(By.ID, "review-start").click()
    item = d.find_element(By.ID, "review-item")
    wait_for(lambda: item.is_displayed(), 30, "an answer to review")
    for key in ("r", "w", "n"):
        shown = item.get_attribute("data-id")
        assert item.find_element(By.CSS_SELECTOR, ".q").text and item.find_element(By.CSS_SELECTOR, ".draft-text").text
        assert item.find_element(By.CSS_SELECTOR, ".reason").text.startswith("Why: ")  # the draft, and why
        item.send_keys(key)
        wait_for(lambda shown=shown: not item.is_displayed() or item.get_attribute("data-id") != shown
                 or visible_text(d, "#review-error"), 30, f"the next answer after {key!r}")
        assert not visible_text(d, "#review-error")
    progress = httpx.get(url + "/v1/reviews/progress", headers=AUTH).json()
    assert progress["by_how"]["random"] == before + 3  # drawn at random: they count for certification
    assert "reviews of this model's answers" in visible_text(d, "#review-progress")

    # the withheld question, answered from the hand-off list
    row = next(li for li in d.find_elements(By.CSS_SELECTOR, "#handoff li") if "tungsten" in li.text)
    row.find_element(By.TAG_NAME, "input").send_keys("3422 °C")
    row.find_element(By.CSS_SELECTOR, "button:not(.plain)").click()
    wait_for(lambda: "tungsten" not in visible_text(d, "#handoff"), 30, "the question gone from the hand-off")
    followed = httpx.get(url + f"/v1/questions/{withheld['id']}", headers=AUTH).json()
    assert followed["person_answer"]["answer"] == "3422 °C"
    turn = ask(d, "What is the melting point of tungsten?")  # asked again: the person's answer
    assert "Answered by a person" in turn.find_element(By.CSS_SELECTOR, ".outcome").text
    assert "3422 °C" in turn.find_element(By.CSS_SELECTOR, ".draft").text
    assert not turn.find_element(By.CSS_SELECTOR, ".confidence").is_displayed()  # no model confidence to show
    d.save_screenshot(str(shots(tmp_path) / "review.png"))
    logged = httpx.get(url + "/v1/log?limit=1", headers=AUTH).json()["questions"][0]
    assert logged["interface"] == "page" and logged["asker"] == "api_key"  # the key's label, never the key

#!/usr/bin/env python3
"""Drives the operator page of `ngbak serve` in headless Chromium, as an operator would.

Environment:
  NGBAK_PAGE_URL     the URL `ngbak serve` printed (http://127.0.0.1:PORT/?token=TOKEN)
  NGBAK_SCREENSHOTS  a directory for the PNGs (1-backup.png ... 4-page.png, failure.png)
  NGBAK_DOWNLOADS    the directory Chromium downloads into (the archive is left there)

Steps: open the page; back up now; verify; dry-run restore; restore (typing the id to confirm)
and check the read-back in the last restore's report; download the archive. One line per step
on stdout; exit 0 when every step held, 1 (with failure.png, the page's message and the browser
console) when one did not.
"""
import json
import os
import shutil
import sys
import tempfile
import time
import traceback

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

TIMEOUT = 60
TERMINAL = {"completed", "failed", "stopped", "handed_off"}


def env_dir(name):
    value = os.environ.get(name)
    if not value:
        sys.exit(f"operator_page: set {name}")
    path = os.path.abspath(value)
    os.makedirs(path, exist_ok=True)
    return path


PAGE_URL = os.environ.get("NGBAK_PAGE_URL") or sys.exit("operator_page: set NGBAK_PAGE_URL")
SHOTS = env_dir("NGBAK_SCREENSHOTS")
DOWNLOADS = env_dir("NGBAK_DOWNLOADS")


def css_str(s):
    """A value quoted for a CSS attribute selector."""
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"') + '"'


def start_browser(profile):
    opts = webdriver.ChromeOptions()
    opts.binary_location = os.environ.get("NGBAK_CHROMIUM", "/usr/bin/chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1400,1000", f"--user-data-dir={profile}"):
        opts.add_argument(arg)
    opts.add_experimental_option("prefs", {
        "download.default_directory": DOWNLOADS,
        "download.prompt_for_download": False,
        "download.directory_upgrade": True,
        "safebrowsing.enabled": False,
    })
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=os.environ.get("NGBAK_CHROMEDRIVER", "/usr/bin/chromedriver"))
    driver = webdriver.Chrome(service=service, options=opts)
    # Headless Chromium honours the download prefs, but say it through DevTools too.
    try:
        driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": DOWNLOADS})
    except WebDriverException:
        pass
    return driver


class Page:
    def __init__(self, driver):
        self.d = driver

    def wait(self, what, condition, timeout=TIMEOUT):
        """Waits for condition(driver) to be truthy; a timeout says what was awaited."""
        try:
            return WebDriverWait(self.d, timeout, poll_frequency=0.2,
                                 ignored_exceptions=(StaleElementReferenceException,)).until(condition)
        except TimeoutException:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}") from None

    def shot(self, name):
        path = os.path.join(SHOTS, name)
        self.d.save_screenshot(path)
        return path

    def click(self, css):
        """Clicks the element (found afresh: the page re-renders rows as jobs move)."""
        def go(d):
            el = d.find_element(By.CSS_SELECTOR, css)
            d.execute_script("arguments[0].scrollIntoView({block: 'center'})", el)
            if not (el.is_displayed() and el.is_enabled()):
                return False
            el.click()
            return True
        self.wait(f"{css} to be clickable", go)

    def text(self, css):
        els = self.d.find_elements(By.CSS_SELECTOR, css)
        return els[0].text if els else ""

    def backup_ids(self):
        return {tr.get_attribute("data-backup-id")
                for tr in self.d.find_elements(By.CSS_SELECTOR, "#backups tr[data-backup-id]")}

    def job_ids(self):
        return {tr.get_attribute("data-job") for tr in self.d.find_elements(By.CSS_SELECTOR, "#jobs tr[data-job]")}

    def run_job(self, what, act):
        """Does act(), then waits for the job it started to show `completed`; returns the job id."""
        before = self.job_ids()
        last = self.d.find_element(By.ID, "jobs").get_attribute("data-last-job")
        act()

        def started(d):
            now = d.find_element(By.ID, "jobs").get_attribute("data-last-job")
            if now and now != last:
                return now
            new = self.job_ids() - before
            return sorted(new)[0] if len(new) == 1 else False
        job = self.wait(f"the {what} job to appear in #jobs", started)
        status_css = f"#jobs tr[data-job={css_str(job)}] .job-status"

        def ended(d):
            s = self.text(status_css).strip()
            return s if s in TERMINAL else False
        status = self.wait(f"the {what} job {job} to end", ended)
        if status != "completed":
            row = self.text(f"#jobs tr[data-job={css_str(job)}]")
            raise AssertionError(f"the {what} job {job} ended {status!r}: {row}")
        return job


def main(driver):
    page = Page(driver)

    # a. The token link sets the cookie and redirects to /.
    driver.get(PAGE_URL)
    page.wait("the page title to contain 'ngbak'", lambda d: "ngbak" in d.title)
    page.wait("the backups and jobs to load",
              lambda d: d.find_element(By.ID, "backups").get_attribute("data-loaded")
              and d.find_element(By.ID, "jobs").get_attribute("data-loaded"))
    assert "token=" not in driver.current_url, f"the token stayed in the address bar: {driver.current_url}"
    print(f"a. opened {driver.current_url} — title {driver.title!r}", flush=True)

    # b. Back up now.
    before = page.backup_ids()
    job = page.run_job("backup", lambda: page.click("#backup-now"))

    def new_backup(d):
        new = sorted(i for i in page.backup_ids() - before if not i.startswith("pre-restore_"))
        if not new:
            return False
        named = page.text(f"#jobs tr[data-job={css_str(job)}] .job-backup").strip()
        return named if named in new else new[0]
    backup_id = page.wait("a new backup row in #backups", new_backup)
    row = f"#backups tr[data-backup-id={css_str(backup_id)}]"
    print(f"b. backed up: job {job} completed, backup {backup_id} listed — {page.shot('1-backup.png')}", flush=True)

    # c. Verify.
    job = page.run_job("verify", lambda: page.click(f'{row} [data-action="verify"]'))
    print(f"c. verified: job {job} completed — {page.shot('2-verify.png')}", flush=True)

    # d. Dry-run restore.
    job = page.run_job("dry-run restore", lambda: page.click(f'{row} [data-action="dry-run"]'))
    print(f"d. dry-run restore: job {job} completed", flush=True)

    # e. Restore, confirmed by typing the id (the button stays disabled until it matches).
    def restore():
        page.click(f'{row} [data-action="restore"]')
        box = page.wait("#confirm-id to show", lambda d: (e := d.find_element(By.ID, "confirm-id")).is_displayed() and e)
        button = driver.find_element(By.ID, "confirm-restore")
        assert not button.is_enabled(), "#confirm-restore is enabled before the id was typed"
        box.send_keys(backup_id[:-1])
        assert not button.is_enabled(), "#confirm-restore is enabled with only part of the id typed"
        box.send_keys(backup_id[-1])
        page.wait("#confirm-restore to be enabled once the id is typed", lambda d: button.is_enabled())
        button.click()
    job = page.run_job("restore", restore)
    report = page.wait("#last-restore to tell the read-back",
                       lambda d: (t := page.text("#last-restore")) and "read back" in t and t)
    assert "DIFFERENT" not in report, f"the restored state differs from the archive:\n{report}"
    assert backup_id in report, f"#last-restore is not about {backup_id}:\n{report}"
    print(f"e. restored: job {job} completed; last restore: {' | '.join(report.splitlines())} — "
          f"{page.shot('3-restore.png')}", flush=True)

    # f. Download: a plain link; Chromium saves <id>.ngbak into NGBAK_DOWNLOADS.
    target = os.path.join(DOWNLOADS, backup_id + ".ngbak")
    assert not os.path.exists(target), f"{target} exists before the download"
    page.click(f'{row} [data-action="download"]')

    def downloaded(d):
        partial = [n for n in os.listdir(DOWNLOADS) if n.endswith(".crdownload")]
        return os.path.isfile(target) and not partial
    page.wait(f"{target} to be downloaded", downloaded)
    print(f"f. downloaded {os.path.getsize(target)} bytes to {target} — {page.shot('4-page.png')}", flush=True)


def report_failure(driver, error):
    print(f"operator_page: FAILED: {error}", file=sys.stderr)
    if not isinstance(error, AssertionError):
        traceback.print_exc()
    if driver is None:
        return
    try:
        print(f"operator_page: screenshot {Page(driver).shot('failure.png')}", file=sys.stderr)
    except WebDriverException as e:
        print(f"operator_page: no screenshot: {e}", file=sys.stderr)
    try:
        print(f"operator_page: #message: {Page(driver).text('#message')!r}", file=sys.stderr)
        print(f"operator_page: #jobs:\n{Page(driver).text('#jobs')}", file=sys.stderr)
    except WebDriverException:
        pass
    try:
        for entry in driver.get_log("browser"):
            print(f"operator_page: console {json.dumps(entry)}", file=sys.stderr)
    except WebDriverException as e:
        print(f"operator_page: no console log: {e}", file=sys.stderr)


if __name__ == "__main__":
    profile = tempfile.mkdtemp(prefix="ngbak-chromium-")
    driver = None
    code = 1
    try:
        driver = start_browser(profile)
        started = time.monotonic()
        main(driver)
        print(f"operator_page: all steps held in {time.monotonic() - started:.1f} s", flush=True)
        code = 0
    except Exception as e:  # every failure: screenshot, message, console, exit 1
        report_failure(driver, e)
    finally:
        if driver is not None:
            try:
                driver.quit()
            except WebDriverException:
                pass
        shutil.rmtree(profile, ignore_errors=True)
    sys.exit(code)

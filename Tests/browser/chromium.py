"""Headless chromium for the page tests: Debian's chromium and chromium-driver, driven by selenium."""
import json
import sys
import time
import traceback
from contextlib import contextmanager

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.support.ui import WebDriverWait


def chromium():
    """A browser; a start-up that fails (chromium is slow to come up on a busy machine) is tried
    again, twice."""
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    for attempt in range(3):
        try:
            return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        except Exception:
            if attempt == 2:
                raise
            time.sleep(1)


def report_failure():
    """Whatever went wrong, as JSON on standard output (the tests read only that), and exit 1."""
    print(json.dumps({"error": traceback.format_exc()}))
    sys.exit(1)


@contextmanager
def browser():
    """A browser for the `with` block, quit after it; anything that goes wrong is reported."""
    try:
        driver = chromium()
    except Exception:
        report_failure()
    try:
        yield driver
    except Exception:
        report_failure()
    finally:
        driver.quit()


def gone(old):
    """Whether `old` belongs to a page that is no longer shown. Chromium reports an element of
    the page it is leaving either as stale or, caught mid-navigation, as an inspector error that
    its node "does not belong to the document": both mean the same."""
    def check(_):
        try:
            old.is_enabled()
            return False
        except StaleElementReferenceException:
            return True
        except WebDriverException as e:
            if "does not belong to the document" in str(e):
                return True
            raise
    return check


def click_and_wait(driver, element, timeout=15):
    """Clicks what loads another page, and returns once the old page is gone (reading the new
    page at once could read the old one's elements)."""
    old = driver.find_element(By.TAG_NAME, "html")
    element.click()
    WebDriverWait(driver, timeout).until(gone(old))

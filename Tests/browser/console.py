"""An operator in the console, in headless chromium (Debian's chromium and chromium-driver, driven
by selenium): signs in, finds the failed delivery with its error, opens it, replays it and watches
the list turn it delivered without reloading; opens its incident (whose title is hostile markup),
acknowledges and resolves it; signs out, and tries the old session cookie again. Screenshots of the
delivery and incident pages at a phone's and a desktop's width go to SHOTS. Every page visited is
searched for every secret in SECRETS (a JSON list). Prints what was seen, as JSON.

Usage: console.py BASE TOKEN INCIDENT SHOTS SECRETS"""
import json
import os
import sys
import time

from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from chromium import browser, click_and_wait  # noqa: E402

base, token, incident, shots, secrets = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], json.loads(sys.argv[5])
os.makedirs(shots, exist_ok=True)
out = {"leaks": [], "alerts": 0, "pages": []}
WIDTHS = {"phone": (375, 812), "desktop": (1280, 900)}


def seen(driver):
    """Notes the page: its path, any secret on it, any alert a script raised."""
    out["pages"].append(driver.current_url.replace(base, ""))
    source = driver.page_source
    out["leaks"] += [driver.current_url.replace(base, "") for s in secrets if s in source]
    try:
        driver.switch_to.alert.dismiss()
        out["alerts"] += 1
    except NoAlertPresentException:
        pass


def shoot(driver, name):
    """Screenshots at both widths; answers whether the phone's view scrolls sideways."""
    sideways = {}
    for width_name, (w, h) in WIDTHS.items():
        driver.set_window_size(w, h)
        driver.refresh()
        driver.save_screenshot(os.path.join(shots, f"{name}-{width_name}.png"))
        sideways[width_name] = driver.execute_script(
            "return document.documentElement.scrollWidth > document.documentElement.clientWidth")
        if sideways[width_name]:
            # What sticks out, for the failure message.
            out.setdefault("too_wide", {})[f"{name}-{width_name}"] = driver.execute_script(
                "const w = document.documentElement.clientWidth; return [...document.querySelectorAll('body *')]"
                ".filter(e => e.getBoundingClientRect().right > w + 1).slice(0, 5)"
                ".map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))")
    driver.set_window_size(*WIDTHS["desktop"])
    return sideways


def text(driver, css):
    return driver.find_element(By.CSS_SELECTOR, css).text


with browser() as driver:
    driver.set_window_size(*WIDTHS["desktop"])
    # No session: the failed deliveries' page sends the browser to sign in, then back.
    driver.get(base + "/console/deliveries?state=failed")
    out["redirected_to"] = driver.current_url.replace(base, "").split("?")[0]
    driver.find_element(By.ID, "token").send_keys(token)
    click_and_wait(driver, driver.find_element(By.CSS_SELECTOR, "form button[type=submit]"))
    seen(driver)
    out["after_sign_in"] = driver.current_url.replace(base, "")
    row = driver.find_element(By.CSS_SELECTOR, "tbody tr")
    out["failed_row"] = row.text
    # The delivery: its attempts and its error, then the replay.
    click_and_wait(driver, row.find_element(By.CSS_SELECTOR, "td a"))
    seen(driver)
    delivery_url = driver.current_url
    out["delivery"] = {
        "state": text(driver, "dl.facts .badge"),
        "attempts": len(driver.find_elements(By.CSS_SELECTOR, "tbody tr")),
        "request": text(driver, "pre"),
    }
    out["delivery_sideways"] = shoot(driver, "delivery-failed")
    click_and_wait(driver, driver.find_element(By.XPATH, "//button[text()='Replay']"))
    seen(driver)
    # The list of the incident's deliveries turns it delivered by itself (it refreshes itself).
    driver.get(base + "/console/deliveries?incident=" + incident)
    first = driver.find_element(By.TAG_NAME, "html")
    out["list_first_states"] = [b.text for b in driver.find_elements(By.CSS_SELECTOR, "tbody .badge")]
    WebDriverWait(driver, 30, poll_frequency=0.5).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "tbody .badge")
        and all(b.text == "delivered" for b in d.find_elements(By.CSS_SELECTOR, "tbody .badge")))
    out["list_final_states"] = [b.text for b in driver.find_elements(By.CSS_SELECTOR, "tbody .badge")]
    try:
        first.tag_name
        out["list_reloaded_itself"] = False
    except Exception:
        out["list_reloaded_itself"] = True
    seen(driver)
    driver.get(delivery_url)
    seen(driver)
    out["delivery_after"] = text(driver, "dl.facts .badge")
    shoot(driver, "delivery-delivered")
    # Its incident: the hostile title is text; acknowledge, then resolve.
    click_and_wait(driver, driver.find_element(By.CSS_SELECTOR, "dl.facts dd a"))
    seen(driver)
    out["incident_heading"] = text(driver, "h1")
    out["incident_sideways"] = shoot(driver, "incident-open")
    out["timeline_rows"] = len(driver.find_elements(By.XPATH, "//h2[text()='Timeline']/following-sibling::div[1]//tbody/tr"))
    driver.find_element(By.ID, "acknowledge-message").send_keys("on it")
    click_and_wait(driver, driver.find_element(By.XPATH, "//button[text()='Acknowledge']"))
    seen(driver)
    out["acknowledged"] = driver.find_element(By.XPATH, "//dt[text()='Acknowledged']/following-sibling::dd[1]").text
    # The acknowledgement reaches the webhook before the resolve (a resolve supersedes an update
    # still queued): the report's Updates column for hook says 1, reloading as an operator would.
    def hook_updates(d):
        d.refresh()
        cells = d.find_elements(By.XPATH, "//h2[text()='Who was told']/following-sibling::div[1]//tr[td[1]='hook']/td")
        return len(cells) > 3 and cells[3].text == "1"
    WebDriverWait(driver, 20, poll_frequency=0.3).until(hook_updates)
    driver.find_element(By.ID, "resolve-message").send_keys("fixed by rollback")
    click_and_wait(driver, driver.find_element(By.XPATH, "//button[text()='Resolve']"))
    seen(driver)
    out["status_after_resolve"] = text(driver, "dl.facts .badge")
    shoot(driver, "incident-resolved")
    for path in ("/console/channels", "/console/silences", "/console/incidents"):
        driver.get(base + path)
        seen(driver)
    # Sign out; the old cookie, put back, opens nothing.
    kept = driver.get_cookie("herald_session")
    out["cookie_http_only"] = bool(kept and kept.get("httpOnly"))
    click_and_wait(driver, driver.find_element(By.XPATH, "//button[text()='Sign out']"))
    out["after_sign_out"] = text(driver, "main p")
    driver.get(base + "/console/incidents")
    out["signed_out_lands_on"] = driver.current_url.replace(base, "").split("?")[0]
    driver.add_cookie({"name": "herald_session", "value": kept["value"], "path": "/console"})
    driver.get(base + "/console/incidents")
    out["old_cookie_lands_on"] = driver.current_url.replace(base, "").split("?")[0]
print(json.dumps(out))

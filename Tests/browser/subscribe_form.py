"""Signs up for a status page's email updates in headless chromium (Debian's chromium and
chromium-driver, driven by selenium), as a customer would: from the status page's "by email" link,
at a phone's and a desktop's width, then fills the form (address and the first component) and sends
it at the desktop's. Prints what was seen, as JSON: per width, whether the page scrolls sideways,
where the link was and whether the form's fields are visible; and the heading after sending."""
import json
import os
import sys

from selenium.webdriver.common.by import By

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from chromium import browser, click_and_wait  # noqa: E402

# `subscribe_form.py BASE ADDRESS` signs up; `subscribe_form.py --confirm LINK` follows a
# confirmation link and presses its button, and prints the heading it lands on.
if sys.argv[1] == "--confirm":
    with browser() as driver:
        driver.get(sys.argv[2])
        button = driver.find_element(By.CSS_SELECTOR, "form button[type=submit]")
        seen = {"button": button.text}
        click_and_wait(driver, button)
        seen["after"] = driver.find_element(By.TAG_NAME, "h1").text
    print(json.dumps(seen))
    sys.exit(0)

base, address = sys.argv[1], sys.argv[2]
out = {}
with browser() as driver:
    for name, (width, height) in {"phone": (375, 812), "desktop": (1280, 900)}.items():
        driver.set_window_size(width, height)
        driver.get(base + "/status")
        link = driver.find_element(By.CSS_SELECTOR, ".follow a[href='/status/subscribe']")
        seen = {"link_text": link.text, "link_in_first_screen": link.location["y"] < height}
        click_and_wait(driver, link)
        email = driver.find_element(By.ID, "email")
        boxes = driver.find_elements(By.CSS_SELECTOR, "input[type=checkbox][name=components]")
        seen.update({
            "inner_width": driver.execute_script("return document.documentElement.clientWidth"),
            "scroll_width": driver.execute_script("return document.documentElement.scrollWidth"),
            "heading": driver.find_element(By.TAG_NAME, "h1").text,
            "email_visible": email.is_displayed(),
            "components": [b.get_attribute("value") for b in boxes if b.is_displayed()],
        })
        out[name] = seen
    email.send_keys(address)
    boxes[0].click()
    click_and_wait(driver, driver.find_element(By.CSS_SELECTOR, "form button[type=submit]"))
    out["after_sending"] = driver.find_element(By.TAG_NAME, "h1").text
print(json.dumps(out))

"""Opens a status page in headless chromium (Debian's chromium and chromium-driver, driven by
selenium) at a phone's and a desktop's width and prints what a customer would see, as JSON: per
width, whether the page scrolls sideways, the heading, its home link, whether the logo loaded,
the components by group with their state, where the feed links are, and the scheduled
maintenance shown."""
import json
import os
import sys

from selenium.webdriver.common.by import By

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from chromium import browser  # noqa: E402

url = sys.argv[1]
out = {}
with browser() as driver:
    for name, (width, height) in {"phone": (375, 812), "desktop": (1280, 900)}.items():
        driver.set_window_size(width, height)
        driver.get(url)
        inner = driver.execute_script("return document.documentElement.clientWidth")
        scroll = driver.execute_script("return document.documentElement.scrollWidth")
        heading = driver.find_element(By.TAG_NAME, "h1")
        home = driver.find_elements(By.CSS_SELECTOR, "a.brand")
        logos = driver.find_elements(By.CSS_SELECTOR, ".brand img")
        groups = []
        section = driver.find_element(By.CSS_SELECTOR, "section[aria-labelledby=components]")
        current = {"group": None, "components": []}
        for el in section.find_elements(By.CSS_SELECTOR, "h3.group, ul.components > li"):
            if el.tag_name == "h3":
                if current["components"]:
                    groups.append(current)
                current = {"group": el.text, "components": []}
            else:
                spans = el.find_elements(By.XPATH, "./span")
                current["components"].append({"name": spans[0].text.split("\n")[0], "status": spans[-1].text,
                                              "visible": el.is_displayed()})
        if current["components"]:
            groups.append(current)
        maintenance = [{"title": a.find_element(By.TAG_NAME, "h3").text, "visible": a.is_displayed(),
                        "width": a.size["width"]}
                       for a in driver.find_elements(By.CSS_SELECTOR, "section[aria-labelledby=maintenance] article")]
        feed = driver.find_element(By.CSS_SELECTOR, ".follow a[href='/status/feed.atom']")
        banner = driver.find_element(By.CSS_SELECTOR, ".banner")
        out[name] = {
            "inner_width": inner,
            "scroll_width": scroll,
            "title": heading.text,
            "home": home[0].get_attribute("href") if home else None,
            "logo_loaded": bool(logos) and driver.execute_script("return arguments[0].naturalWidth > 0", logos[0]),
            "groups": groups,
            "feed_link_above_banner": feed.location["y"] < banner.location["y"],
            "feed_link_in_first_screen": feed.location["y"] < height,
            "banner": banner.text,
            "maintenance": maintenance,
        }
print(json.dumps(out))

#!/usr/bin/env python3
"""Screenshots of the console's main pages (docs/screenshots/*.png), taken with Playwright and Debian's chromium.

Run against a running demo hub: `ecohub demo --data-dir DIR` in one terminal, then
`python scripts/screenshots.py --url http://127.0.0.1:8080 --data-dir DIR`.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--headless=new", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"


def login_token(page: Page, url: str, token: str) -> None:
    """Sign in with an operator token."""
    page.goto(f"{url}/console/login")
    page.fill("#token", token)
    page.click("text=Sign in with token")
    page.wait_for_url("**/console/**")


def shoot(page: Page, url: str, name: str, *, wait: str | None = None, full: bool = True) -> None:
    """Open a page, wait for what makes it meaningful, save a PNG."""
    page.goto(url)
    if wait:
        page.wait_for_selector(wait, timeout=15000)
    page.wait_for_timeout(800)
    page.screenshot(path=str(OUT / f"{name}.png"), full_page=full)
    print("saved", OUT / f"{name}.png")


def main() -> None:
    """Take the screenshots."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--data-dir", default=".ecohub", type=Path)
    ap.add_argument("--email", default="demo@ecohub.example")
    ap.add_argument("--password", default="ecohub-demo-home")
    args = ap.parse_args()
    token = (args.data_dir / "demo-operator-token").read_text().strip()
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        ctx = browser.new_context(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
        page = ctx.new_page()
        shoot(page, f"{args.url}/console/login", "login", full=False)
        login_token(page, args.url, token)
        shoot(page, f"{args.url}/console/", "overview", wait="#portfolio-chart canvas")
        shoot(page, f"{args.url}/console/partners/eco-001", "partner", wait="#stake-chart canvas")
        shoot(page, f"{args.url}/console/products/cuco.plug.v3", "product")
        shoot(page, f"{args.url}/console/markets", "markets", full=False)
        shoot(page, f"{args.url}/console/listings?market=NG", "listings", full=False)
        shoot(page, f"{args.url}/api/v1/docs", "api-docs", wait=".swagger-ui .opblock", full=False)
        page.goto(f"{args.url}/console/fleet")
        # a locator, not a page-side function: the console's CSP forbids evaluating strings as script
        page.locator("#rate").filter(has_text=re.compile(r"^[0-9.]+$")).wait_for(timeout=15000)
        page.wait_for_timeout(4000)  # a few seconds of the messages/s chart
        page.screenshot(path=str(OUT / "fleet.png"), full_page=False)
        print("saved", OUT / "fleet.png")
        ctx.close()

        ctx = browser.new_context(viewport={"width": 1280, "height": 900})
        page = ctx.new_page()
        page.goto(f"{args.url}/console/login")
        page.fill("#email", args.email)
        page.fill("#password", args.password)
        page.click("form:has(#email) button[type=submit]")
        page.wait_for_url("**/console/homes/**")
        home = page.url.replace(args.url, "").split("?")[0]
        page.wait_for_timeout(2500)  # a few live updates
        page.screenshot(path=str(OUT / "home.png"), full_page=False)
        print("saved", OUT / "home.png")
        first = page.locator(".card h3 a").first.get_attribute("href")
        shoot(page, f"{args.url}{first}", "device", wait="#telemetry-chart canvas", full=False)
        shoot(page, f"{args.url}/console/automations", "automations", full=False)
        shoot(page, f"{args.url}/console/privacy", "privacy", full=False)
        shoot(page, f"{args.url}{home}/sharing", "sharing", full=False)
        for lang, name in (("de", "home-de"), ("zh_Hans", "home-zh")):
            page.goto(f"{args.url}/console/automations")
            with page.expect_navigation():
                page.select_option("#lang-switch", lang)
            shoot(page, page.url, f"automations-{name.split('-')[1]}", full=False)
            page.goto(page.url.replace("/automations", "/homes"))
            page.wait_for_url("**/console/homes/**")
            page.wait_for_timeout(1500)
            page.screenshot(path=str(OUT / f"{name}.png"), full_page=False)
            print("saved", OUT / f"{name}.png")
        with page.expect_navigation():
            page.select_option("#lang-switch", "en")  # the account keeps English for the next runs
        ctx.close()

        phone = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
        page = phone.new_page()
        page.goto(f"{args.url}/console/login")
        page.fill("#email", args.email)
        page.fill("#password", args.password)
        page.click("form:has(#email) button[type=submit]")
        page.wait_for_url("**/console/homes/**")
        page.wait_for_timeout(1500)
        page.screenshot(path=str(OUT / "home-phone.png"), full_page=False)
        print("saved", OUT / "home-phone.png")
        page.click("#menu-toggle")
        page.wait_for_timeout(300)
        page.screenshot(path=str(OUT / "menu-phone.png"), full_page=False)
        print("saved", OUT / "menu-phone.png")
        phone.close()
        browser.close()


if __name__ == "__main__":
    main()

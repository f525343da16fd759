"""End to end: the Explore page in a real browser. A curator drags a box on the map; the
segments inside it must become the review queue, exactly; the search box must answer.

`curator app` serves the real app and headless Chromium drives it (the server and browser
fixtures are test_e2e_browser.py's). The box is drawn with the mouse in plotly's box-select
mode, so the selection reaches the page through Streamlit's own selection event; which
segments lie inside it is computed here from the map's coordinates, independently of the
page. A screenshot of the map is left in artifacts/e2e-explore.png (git-ignored).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from test_e2e_browser import (  # noqa: F401 (fixtures)
    ROOT,
    browser,
    choose_view,
    press,
    screenshot,
    serving,
    wait,
    wait_for_text,
)
from test_explore import MODEL, band_project

from curator.curation.queues import load_queue
from curator.curation.review import ReviewFilter, review_page
from curator.explore.map import SegmentMap, segment_map
from curator.project import Project

pytestmark = pytest.mark.slow  # about 40 s: a real server, a real browser

SCREENSHOT = ROOT / "artifacts" / "e2e-explore.png"

# Where a point of the map is on the screen: plotly's own axis conversion, from the drag
# layer of the main subplot (the area a box is dragged on).
TO_SCREEN = """
const plot = document.querySelector('.js-plotly-plot');
const layout = plot._fullLayout;
const area = plot.querySelector('.draglayer .xy .nsewdrag').getBoundingClientRect();
return arguments[0].map(([x, y]) => [area.left + layout.xaxis.l2p(x),
                                     area.top + layout.yaxis.l2p(y)]);
"""


@pytest.fixture
def explored(tmp_path: Path, loud_and_quiet: Path) -> tuple[Project, SegmentMap]:
    """8 segments tagged by the band tagger, and their map (drawn here, then cached: the
    page reads the same coordinates)."""
    project = band_project(tmp_path / "project", loud_and_quiet, tracks=4)
    return project, segment_map(project, MODEL)


def left_half(drawn: SegmentMap) -> tuple[set[str], tuple[float, float, float, float]]:
    """The segments left of the middle x gap, and a box (x0, y0, x1, y1 in map units)
    around exactly them, its edges well away from every point."""
    xs, ys = drawn.coordinates[:, 0], drawn.coordinates[:, 1]
    order = np.sort(xs)
    gaps = np.diff(order)
    middle = len(order) // 2
    cut = int(np.argmax(gaps[middle - 2 : middle + 1])) + middle - 2  # a wide gap near the middle
    edge = (order[cut] + order[cut + 1]) / 2
    inside = {s for s, x in zip(drawn.segment_ids, xs, strict=True) if x < edge}
    pad = 0.05 * (ys.max() - ys.min() + 1e-9)
    return inside, (xs.min() - pad, ys.min() - pad, edge, ys.max() + pad)


def open_explore(driver: WebDriver, url: str) -> None:
    """Open the Explore page and wait for the map's points to be drawn."""
    driver.get(f"{url}/Explore")
    wait_for_text(driver, "Drag a box or a lasso")
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".js-plotly-plot .point"), "points")


def drag_box(driver: WebDriver, box: tuple[float, float, float, float]) -> None:
    """Switch the map to box select and drag the box with the mouse, corner to corner."""
    plot = driver.find_element(By.CSS_SELECTOR, ".js-plotly-plot")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", plot)
    ActionChains(driver).move_to_element(plot).perform()  # the mode bar shows on hover
    press(
        driver,
        lambda: plot.find_element(By.CSS_SELECTOR, '.modebar-btn[data-val="select"]'),
        "the box-select button",
    )
    (x0, y0), (x1, y1) = driver.execute_script(TO_SCREEN, [box[:2], box[2:]])
    actions = ActionBuilder(driver, duration=50)
    mouse = actions.pointer_action
    mouse.move_to_location(round(x0), round(y0)).pointer_down()
    steps = 8
    for k in range(1, steps + 1):
        mouse.move_to_location(round(x0 + (x1 - x0) * k / steps), round(y0 + (y1 - y0) * k / steps))
    mouse.pointer_up()
    actions.perform()


def test_a_box_on_the_map_becomes_a_review_queue_of_exactly_its_segments(
    explored: tuple[Project, SegmentMap],
    browser: WebDriver,  # noqa: F811
    tmp_path: Path,
) -> None:
    project, drawn = explored
    inside, box = left_half(drawn)
    assert 0 < len(inside) < len(drawn.segment_ids)
    with serving(project, tmp_path) as url:
        open_explore(browser, url)
        screenshot(browser, SCREENSHOT)
        drag_box(browser, box)
        wait_for_text(browser, f"{len(inside)} segment(s) selected.")
        press(
            browser,
            lambda: browser.find_element(
                By.XPATH, '//button[normalize-space(.)="Open as a review queue"]'
            ),
            "Open as a review queue",
        )
        wait_for_text(browser, f"Only the {len(inside)} segment(s) of a queue")
        (queue_id,) = parse_qs(urlparse(browser.current_url).query)["queue"]
        assert set(load_queue(project, queue_id).segments) == inside
        choose_view(browser, "List")
        wait_for_text(browser, f"{len(inside)} segment(s) match.")
        shown = review_page(project, ReviewFilter(segments=load_queue(project, queue_id).segments))
        assert {r["id"] for r in shown.segments} == inside
        page_text = browser.find_element(By.TAG_NAME, "body").text
        assert all(segment in page_text for segment in inside)
        assert not any(s in page_text for s in set(drawn.segment_ids) - inside)

        a_click_opens_its_segment(browser, url, drawn)
        search_finds_segments(browser, url)


def a_click_opens_its_segment(driver: WebDriver, url: str, drawn: SegmentMap) -> None:
    """A click on one point shows that segment below the map, with a link to Review."""
    open_explore(driver, url)
    segment = drawn.segment_ids[0]
    plot = driver.find_element(By.CSS_SELECTOR, ".js-plotly-plot")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", plot)
    ((x, y),) = driver.execute_script(TO_SCREEN, [drawn.coordinates[0].tolist()])
    actions = ActionBuilder(driver)
    actions.pointer_action.move_to_location(round(x), round(y)).click()
    actions.perform()
    wait_for_text(driver, "Open in Review")
    link = driver.find_element(By.XPATH, '//a[contains(@href, "Review?segment=")]')
    assert link.get_attribute("href").endswith(f"Review?segment={segment}")


def search_finds_segments(driver: WebDriver, url: str) -> None:
    """The search box ranks segments by words; each result plays and opens."""
    open_explore(driver, url)
    box = driver.find_element(By.CSS_SELECTOR, ".st-key-explore-search input")
    box.send_keys("hi-hat", Keys.ENTER)
    wait_for_text(driver, "Ranked by")
    players = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stAudio"]')
    likes = driver.find_elements(By.XPATH, '//button[normalize-space(.)="More like this"]')
    opens = driver.find_elements(By.XPATH, '//a[contains(@href, "Review?segment=")]')
    assert players and len(players) == len(likes) == len(opens)

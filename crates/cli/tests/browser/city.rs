//! The City dashboard on `citystream demo` with its simulation: district
//! cards of coloured stations, a station chart with its readings and
//! forecast band. With `CITYSTREAM_UPDATE_SCREENSHOT=1` it also writes
//! docs/console-dashboard.png (the README's picture) from what it saw.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;

use crate::browser::{Browser, browser_test};
use crate::citystream::{Demo, consume_all};
use crate::webdriver::Engine;

/// Readings the chart must hold before the test looks at it.
const CHART_POINTS_MIN: usize = 10;

/// A station tile of the district grid.
#[derive(Debug, Deserialize)]
struct Station {
    station: String,
    district: String,
    kind: String,
}

/// What the chart shows: how many readings, and its caption.
#[derive(Debug, Deserialize)]
struct Chart {
    points: usize,
    caption: String,
}

/// With the simulation running, the dashboard fills: every district card
/// has stations coloured by level, the districts are those the simulator
/// writes, and the chart of the chosen station holds its readings (the
/// last one among those the CLI reads for its key) and a forecast band.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn city_dashboard_charts_simulated_data() {
    browser_test("city", city).await;
}

async fn city(browser: Browser) {
    // A fast city clock: readings and forecasts within the waits.
    let demo = Demo::start(&["--speed", "60"]);
    let node = demo.node(1);
    browser.open(&node.http, "city").await;
    let stations = wait_for_stations(&browser).await;
    // An air station: analytics forecasts air, traffic and weather, not
    // buildings, and the page first charts whichever station came first.
    let air = stations
        .iter()
        .find(|s| s.kind == "air")
        .expect("an air station");
    let tile = format!(
        "[data-testid=\"city-station\"][data-station=\"{}\"]",
        air.station
    );
    browser.click_on(&tile).await;
    let chart = wait_for_chart(&browser, &air.station).await;
    // The first poll of /api/city/latest may have found no reading yet;
    // a later one, with readings, clears the line.
    let script = "return document.querySelector('[data-testid=\"city-status\"]').textContent === '' ? true : null;";
    let _: bool = browser
        .wait_for("a clear city status line", script, &[])
        .await;

    let air_records = consume_all(&node.native, "city.air").await;
    let key = format!("city/{}/air/{}", air.district, air.station);
    let aqi: Vec<f64> = air_records
        .iter()
        .filter(|record| record.key.as_deref() == Some(key.as_str()))
        .map(|record| serde_json::from_str::<serde_json::Value>(&record.value).expect("JSON"))
        .filter_map(|reading| reading["values"]["aqi"].as_f64())
        .collect();
    assert!(
        aqi.len() >= chart.points,
        "{} readings of {key}, {chart:?}",
        aqi.len()
    );
    let last = last_value(&chart.caption);
    assert!(
        aqi.iter().any(|&value| shown_as(value, last)),
        "the chart's last AQI {last} is not a reading of {key}: {aqi:?}"
    );
    let districts: BTreeSet<&str> = air_records
        .iter()
        .filter_map(|record| record.key.as_deref()?.split('/').nth(1))
        .collect();
    // The page polls the latest readings: a district whose first reading
    // came after the cards were read shows up at its next poll.
    let expected: Vec<&str> = districts.iter().copied().collect();
    let script = "const tiles = [...document.querySelectorAll('[data-testid=\"city-station\"]')];
        const shown = [...new Set(tiles.map((t) => t.dataset.district))].sort();
        return arguments[0].every((d) => shown.includes(d)) ? shown : null;";
    let shown: Vec<String> = browser
        .wait_for(
            "every district the simulator writes",
            script,
            &[expected.into()],
        )
        .await;
    let shown: BTreeSet<&str> = shown.iter().map(String::as_str).collect();
    assert_eq!(shown, districts, "the districts the simulator writes");

    browser.fit_window_to_page().await;
    let screenshot = browser.screenshot("city").await;
    if browser.engine == Engine::Chromium
        && std::env::var_os("CITYSTREAM_UPDATE_SCREENSHOT").is_some()
    {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/console-dashboard.png");
        std::fs::copy(&screenshot, &docs)
            .unwrap_or_else(|error| panic!("write {}: {error}", docs.display()));
    }
    browser.finish().await;
}

/// Waits until the page shows district cards, each with stations that
/// have a level; returns every station tile.
async fn wait_for_stations(browser: &Browser) -> Vec<Station> {
    let script = "if (!document.querySelector('[data-testid=\"city-empty\"]').hidden) return null;
        const cards = [...document.querySelectorAll('[data-testid=\"city-district\"]')];
        if (cards.length === 0) return null;
        const tiles = cards.map((card) => [...card.querySelectorAll('[data-testid=\"city-station\"]')]);
        if (tiles.some((list) => list.length === 0)) return null;
        const stations = tiles.flat().map((t) => ({ station: t.dataset.station, district: t.dataset.district, kind: t.dataset.kind, level: t.dataset.level ?? '' }));
        return stations.every((s) => s.level.startsWith('level-')) ? stations : null;";
    browser
        .wait_for("district cards with coloured stations", script, &[])
        .await
}

/// Waits until the chart shows `station` with readings and a forecast band.
async fn wait_for_chart(browser: &Browser, station: &str) -> Chart {
    let script = "const figure = document.querySelector('[data-testid=\"city-chart\"]');
        const plot = figure.querySelector('[data-points]');
        const chosen = document.querySelector('[data-testid=\"city-station\"][aria-pressed=\"true\"]');
        const band = figure.querySelector('[data-testid=\"city-chart-band\"]');
        const points = Number(plot?.dataset.points ?? 0);
        if (chosen?.dataset.station !== arguments[1] || points < arguments[0]) return null;
        if (plot.dataset.forecast !== 'yes' || !band) return null;
        const caption = document.querySelector('[data-testid=\"city-chart-caption\"]').textContent;
        return { points, caption };";
    let what = format!("a chart of {station}: {CHART_POINTS_MIN}+ readings, a forecast");
    browser
        .wait_for(&what, script, &[CHART_POINTS_MIN.into(), station.into()])
        .await
}

/// "north-air-1 (north), aqi in index; 12 readings, last 52; forecast ..." → 52.
fn last_value(caption: &str) -> f64 {
    let after = caption
        .split("last ")
        .nth(1)
        .unwrap_or_else(|| panic!("no last value in {caption:?}"));
    let number = after
        .split(';')
        .next()
        .unwrap_or(after)
        .trim()
        .trim_end_matches('.');
    number
        .parse()
        .unwrap_or_else(|_| panic!("{number:?} in {caption:?} is not a number"))
}

/// Whether `value` shows as `shown` (format.js `formatNumber`: whole from
/// 100, one decimal from 10, else two).
fn shown_as(value: f64, shown: f64) -> bool {
    let step = match value.abs() {
        a if a >= 100.0 => 1.0,
        a if a >= 10.0 => 0.1,
        _ => 0.01,
    };
    (value - shown).abs() <= step / 2.0 + 1e-9
}

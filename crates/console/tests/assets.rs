//! What the assets contain: every reference resolves to an embedded asset;
//! no URL to another host, no `eval`, no HTML sinks, no inline handler or
//! style; every `data-testid` in the README exists; and, with `node` on the
//! PATH, every module parses and the pure modules' tests pass.

mod common;

use std::process::Command;

use citystream_console::assets::{ASSETS, find};

/// The references of index.html (`src=`, `href=`), in-page anchors excluded.
fn html_references(html: &str) -> Vec<String> {
    let mut references = Vec::new();
    for attribute in [" src=\"", " href=\""] {
        for (at, _) in html.match_indices(attribute) {
            let rest = &html[at + attribute.len()..];
            let reference = &rest[..rest.find('"').expect("a closed attribute")];
            if !reference.starts_with('#') {
                references.push(reference.to_owned());
            }
        }
    }
    references
}

/// The specifiers of a module's static `import`/`export ... from` statements.
fn js_imports(js: &str) -> Vec<String> {
    let mut specifiers = Vec::new();
    let mut statement = String::new();
    for line in js.lines() {
        let starts = line.starts_with("import ") || line.starts_with("import{");
        let exports_from = line.starts_with("export ") && line.contains(" from ");
        if statement.is_empty() && !starts && !exports_from {
            continue;
        }
        statement.push_str(line);
        statement.push('\n');
        if line.trim_end().ends_with(';') {
            specifiers.push(specifier_of(&statement));
            statement.clear();
        }
    }
    assert!(statement.is_empty(), "an unterminated import: {statement}");
    specifiers
}

fn specifier_of(statement: &str) -> String {
    let quoted = statement
        .rfind(" from ")
        .map(|at| &statement[at + 6..])
        .unwrap_or_else(|| statement.trim_start_matches("import").trim_start());
    let quote = quoted.chars().next().expect("a specifier");
    assert!(
        quote == '"' || quote == '\'',
        "not a string specifier: {statement}"
    );
    let inner = &quoted[1..];
    inner[..inner.find(quote).expect("a closed specifier")].to_owned()
}

/// `reference` seen from the asset served at `from` (a URL path) as a URL path.
fn resolve(from: &str, reference: &str) -> String {
    if reference.starts_with('/') {
        return reference.to_owned();
    }
    assert!(
        reference.starts_with("./") || reference.starts_with("../"),
        "{from}: {reference:?} is neither absolute nor relative (bare specifiers do not load in browsers)"
    );
    let mut parts: Vec<&str> = from.split('/').collect();
    parts.pop(); // the file itself
    for part in reference.split('/') {
        match part {
            "." => {}
            ".." => {
                parts.pop();
            }
            name => parts.push(name),
        }
    }
    parts.join("/")
}

fn assert_embedded(from: &str, url_path: &str) {
    let asset = url_path.strip_prefix("/console/");
    assert!(
        asset.is_some_and(|asset| find(asset).is_some()),
        "{from} refers to {url_path}, which is not an embedded asset"
    );
}

/// Every src/href of the page and every import of every module is an embedded asset.
#[test]
fn every_reference_resolves_to_an_embedded_asset() {
    let html = common::read_text("index.html");
    let references = html_references(&html);
    assert!(
        references.iter().any(|r| r == "/console/js/main.js"),
        "{references:?}"
    );
    for reference in &references {
        assert_embedded("index.html", &resolve("/", reference));
    }
    let mut imports = 0;
    for path in common::js_files() {
        let js = common::read_text(&path);
        assert!(
            !js.contains("import("),
            "{path}: dynamic import() is not checked here"
        );
        let from = format!("/console/{path}");
        for specifier in js_imports(&js) {
            assert_embedded(&from, &resolve(&from, &specifier));
            imports += 1;
        }
    }
    assert!(
        imports >= 30,
        "found only {imports} imports: is the parser blind?"
    );
    let css = common::read_text("css/console.css");
    assert!(
        !css.contains("url("),
        "css/console.css: url() is not checked here"
    );
    assert!(
        !css.contains("@import"),
        "css/console.css: @import is not checked here"
    );
}

/// The parser sees what the browser sees: multi-line imports, relative paths.
#[test]
fn the_import_parser_reads_multi_line_statements() {
    let js = "import * as api from \"../api.js\";\nimport {\n  a,\n  b,\n} from './x.js';\nexport { c } from \"./c.js\";\nconst s = \"import nothing\";\n";
    assert_eq!(js_imports(js), ["../api.js", "./x.js", "./c.js"]);
    assert_eq!(
        resolve("/console/js/pages/city.js", "../api.js"),
        "/console/js/api.js"
    );
    assert_eq!(
        resolve("/console/js/main.js", "./pages/city.js"),
        "/console/js/pages/city.js"
    );
}

/// The one URL allowed in the assets: the SVG namespace name (never fetched).
const SVG_NAMESPACE: &str = "http://www.w3.org/2000/svg";

/// No asset names another host: no CDN, no external font. (Protocol-relative
/// `//host` references fail the reference test: they do not start with /console/.)
#[test]
fn no_asset_refers_to_another_host() {
    for asset in ASSETS {
        let text = std::str::from_utf8(asset.bytes).unwrap();
        for scheme in ["http://", "https://"] {
            for (at, _) in text.match_indices(scheme) {
                assert!(
                    text[at..].starts_with(SVG_NAMESPACE),
                    "{}: a URL to another host: {}",
                    asset.path,
                    &text[at..(at + 60).min(text.len())]
                );
            }
        }
        assert!(!text.contains("@font-face"), "{}: a web font", asset.path);
    }
}

/// Nothing turns text into code or markup: no eval, no HTML sinks.
#[test]
fn no_eval_and_no_html_sinks() {
    for asset in ASSETS {
        let text = std::str::from_utf8(asset.bytes).unwrap();
        for sink in [
            "new Function",
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "javascript:",
            "setAttribute(\"style\"",
        ] {
            assert!(!text.contains(sink), "{}: uses {sink}", asset.path);
        }
        for (at, _) in text.match_indices("eval(") {
            let before = text[..at].chars().next_back();
            assert!(
                !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$'),
                "{}: uses eval(",
                asset.path
            );
        }
        assert!(
            !has_handler_property(text),
            "{}: assigns an on<event> property: use addEventListener",
            asset.path
        );
    }
}

/// `x.onclick = ...` style assignments (not `x.onReading`, not `==`).
fn has_handler_property(text: &str) -> bool {
    text.match_indices(".on").any(|(at, _)| {
        let rest = &text[at + 3..];
        let name_length = rest.chars().take_while(|c| c.is_ascii_lowercase()).count();
        let after = rest[name_length..].trim_start();
        name_length > 0 && after.starts_with('=') && !after.starts_with("==")
    })
}

/// The page has no inline script, no inline handler and no style attribute (the CSP refuses them).
#[test]
fn the_page_has_no_inline_code_or_style() {
    let html = common::read_text("index.html");
    for (at, _) in html.match_indices("<script") {
        let tag = &html[at..at + html[at..].find('>').unwrap()];
        assert!(tag.contains(" src=\""), "an inline script: {tag}");
        assert!(tag.contains("type=\"module\""), "a classic script: {tag}");
    }
    for (at, _) in html.match_indices(" on") {
        let rest = &html[at + 3..];
        let name_length = rest.chars().take_while(|c| c.is_ascii_lowercase()).count();
        assert!(
            !(name_length > 0 && rest[name_length..].starts_with('=')),
            "an inline handler: {}",
            &html[at..at + 30]
        );
    }
    assert!(!html.contains(" style=\""), "an inline style attribute");
    assert!(!html.contains("<style"), "an inline style element");
}

/// Every testid the README lists exists in the assets, and every literal one in the assets is listed.
#[test]
fn readme_testids_match_the_assets() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = &readme[readme
        .find("## `data-testid`s")
        .expect("the testids section")..];
    let section = &section[..section[3..]
        .find("\n## ")
        .map_or(section.len(), |end| end + 3)];
    let listed: Vec<&str> = section
        .lines()
        .filter(|line| line.starts_with("| `"))
        .flat_map(|line| {
            line.split('|')
                .nth(1)
                .unwrap()
                .split('`')
                .skip(1)
                .step_by(2)
        })
        .collect();
    assert!(listed.len() >= 60, "only {} testids listed", listed.len());
    let all: String = ASSETS
        .iter()
        .map(|asset| std::str::from_utf8(asset.bytes).unwrap())
        .collect();
    for testid in &listed {
        assert!(
            all.contains(&format!("\"{testid}\"")),
            "README lists {testid}, which no asset has"
        );
    }
    for marker in ["data-testid=\"", "testid: \"", "\"data-testid\": \""] {
        for (at, _) in all.match_indices(marker) {
            let rest = &all[at + marker.len()..];
            let testid = &rest[..rest.find('"').unwrap()];
            assert!(
                listed.contains(&testid),
                "{testid} is in the assets but not in the README"
            );
        }
    }
}

/// Every JavaScript module parses as an ES module (`node --check`).
#[test]
fn every_module_passes_node_check() {
    let Some(version) = common::node() else {
        eprintln!("skipped: node is not on the PATH, the modules were not parsed");
        return;
    };
    let folder = tempfile::tempdir().unwrap();
    for path in common::js_files() {
        let copy = folder
            .path()
            .join(path.replace('/', "__").replace(".js", ".mjs"));
        std::fs::write(&copy, common::read_asset(&path)).unwrap();
        let output = Command::new("node")
            .arg("--check")
            .arg(&copy)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{path} does not parse under node {version}:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// The pure modules (formatting, log buffer, nodes, chart arithmetic, city model, publish body) pass their node tests.
#[test]
fn pure_modules_pass_their_node_tests() {
    let Some(_) = common::node() else {
        eprintln!("skipped: node is not on the PATH, tests/js was not run");
        return;
    };
    let tests = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/js/pure.test.mjs");
    let output = Command::new("node")
        .arg("--test")
        .arg(tests)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "node --test {tests} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

//! The page: server-rendered HTML (every dynamic value escaped with `html-escape`), its
//! script and its style sheet, both embedded in the binary so the page works offline and
//! loads nothing from elsewhere.

use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};

/// The page's script: columns, cards, the analysis and schedule panels (vanilla JS). It sets
/// post content with `textContent` only.
pub const SCRIPT: &str = include_str!("web.js");
/// The page's style sheet.
pub const STYLE: &str = include_str!("web.css");

/// The `Content-Security-Policy` of every page: own scripts, styles and connections only; no
/// remote images, frames or plugins.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// What the page names (all shown escaped).
#[derive(Debug, Clone)]
pub struct PageContext<'a> {
    /// The per-process CSRF token, embedded for the script to send with every action.
    pub csrf: &'a str,
    /// The store, as `Display` shows it (no password).
    pub db: &'a str,
    /// The post topics and the control topic read.
    pub topics: [&'a str; 3],
}

/// The whole page.
pub fn render(context: &PageContext<'_>) -> String {
    let topics = context.topics.map(|t| text(t).into_owned()).join(", ");
    format!(
        r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="{csrf}">
<title>tweet-pipeline — live</title>
<link rel="stylesheet" href="/app.css">
<script src="/app.js" defer></script>
</head>
<body>
<header>
  <h1>tweet-pipeline <span class="sub">live view</span></h1>
  <p id="status" role="status" aria-live="polite">connecting…</p>
  <p class="meta">Reading {topics} from the end · store {db}</p>
</header>
<main>
<section id="columns-panel" aria-labelledby="columns-title">
  <h2 id="columns-title">Columns</h2>
  <form id="add-column" class="inline-form">
    <fieldset>
      <legend>Add a column</legend>
      <label>Name <input name="name" required maxlength="40"></label>
      <label>Language <input name="lang" size="5" placeholder="en"></label>
      <label>Source
        <select name="source">
          <option value="">any</option><option value="x">X</option>
          <option value="mastodon">Mastodon</option><option value="bluesky">Bluesky</option>
          <option value="replay">replay</option>
        </select>
      </label>
      <label>Text contains <input name="contains" maxlength="100"></label>
      <label>Sentiment
        <select name="sentiment">
          <option value="">any</option><option value="positive">positive</option>
          <option value="neutral">neutral</option><option value="negative">negative</option>
        </select>
      </label>
      <label><input type="checkbox" name="has_link"> has a link</label>
      <label><input type="checkbox" name="has_media"> has media</label>
      <button type="submit">Add column</button>
    </fieldset>
  </form>
  <div id="columns" class="columns"></div>
</section>
<section id="analysis-panel" aria-labelledby="analysis-title">
  <h2 id="analysis-title">Analysis <span class="sub">from the store, every 5 s</span></h2>
  <div id="analysis" class="panel-body"><p>loading…</p></div>
</section>
<section id="health-panel" aria-labelledby="health-title">
  <h2 id="health-title">Stream health <span class="sub">from the pipeline's /metrics, every 5 s</span></h2>
  <div id="stream-health" class="panel-body"><p>loading…</p></div>
</section>
<section id="schedule-panel" aria-labelledby="schedule-title">
  <h2 id="schedule-title">Schedule</h2>
  <form id="schedule-form" class="inline-form">
    <fieldset>
      <legend>Schedule a post</legend>
      <label>Text <textarea name="text" required rows="2" cols="40" maxlength="1000"></textarea></label>
      <label>When (your time) <input type="datetime-local" name="at" step="1" required></label>
      <span role="group" aria-label="Networks">
        <label><input type="checkbox" name="to" value="x" checked> X</label>
        <label><input type="checkbox" name="to" value="bluesky"> Bluesky</label>
        <label><input type="checkbox" name="to" value="mastodon"> Mastodon</label>
      </span>
      <button type="submit">Schedule</button>
    </fieldset>
  </form>
  <p id="schedule-message" role="status" aria-live="polite"></p>
  <div id="schedule" class="panel-body"><p>loading…</p></div>
</section>
</main>
</body>
</html>
"##,
        csrf = attr(context.csrf),
        db = text(context.db),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamic_values_are_escaped() {
        let page = render(&PageContext {
            csrf: "tok\"en",
            db: "<script>alert(1)</script>.db",
            topics: ["t<1>", "r", "c"],
        });
        assert!(
            page.contains("&lt;script&gt;alert(1)&lt;/script&gt;.db"),
            "{page}"
        );
        assert!(!page.contains("<script>alert"));
        assert!(page.contains(r#"content="tok&quot;en""#));
        assert!(page.contains("t&lt;1&gt;, r, c"));
        // Only the page's own script, nothing from elsewhere.
        assert_eq!(page.matches("<script").count(), 1);
        assert!(!page.contains("http://") && !page.contains("https://"));
    }

    #[test]
    fn the_script_never_writes_html() {
        assert!(!SCRIPT.contains("innerHTML") && !SCRIPT.contains("outerHTML"));
        assert!(!SCRIPT.contains("insertAdjacentHTML") && !SCRIPT.contains("document.write"));
        assert!(SCRIPT.contains("noopener noreferrer"));
    }
}

//! The one Markdown rendering of a [`Summary`]: GitHub's step summary and pull request
//! comment, GitLab's merge request note and Jenkins' summary file all show this. Wrappers
//! never format.
//!
//! 1. [`rows`] lists what the summary says, one `(label, value)` row per fact, so a new
//!    summary section is one more row.
//! 2. [`render`] lays them out: a heading, a table, the stage times folded away.
//! 3. [`sticky`] prefixes the hidden [`marker`] that finds kiln's comment again, and
//!    [`truncate`] keeps any of them under its platform's size limit.

use std::fmt::Write;

use crate::summary::{Summary, human_size};

/// `$GITHUB_STEP_SUMMARY`: 1 MiB per step.
pub const STEP_SUMMARY_LIMIT: usize = 1024 * 1024;
/// A GitHub issue or pull request comment: 65,536 characters (bytes here, to be safe).
pub const GITHUB_COMMENT_LIMIT: usize = 65_536;
/// A GitLab note: 1,000,000 characters.
pub const GITLAB_NOTE_LIMIT: usize = 1_000_000;

/// The hidden HTML comment that marks kiln's sticky comment for one artifact, so that two
/// kiln jobs in one pull request keep a comment each.
pub fn marker(summary: &Summary) -> String {
    let name = summary
        .artifact
        .reference
        .rsplit_once(':')
        .map_or(summary.artifact.reference.as_str(), |(name, _)| name);
    let name = if name.is_empty() {
        summary.project.name.as_str()
    } else {
        name
    };
    // Nothing that could end the HTML comment early.
    let mut name: String = name
        .chars()
        .filter(|c| *c != '>' && !c.is_control())
        .collect();
    while name.contains("--") {
        name = name.replace("--", "-");
    }
    format!("<!-- kiln-summary: {name} -->")
}

/// A comment or note body: the marker, then the summary, within `limit` bytes.
pub fn sticky(summary: &Summary, limit: usize) -> String {
    truncate(format!("{}\n{}", marker(summary), render(summary)), limit)
}

/// One `(label, value)` line of the summary table; the value is Markdown already.
pub type Row = (String, String);

/// What the summary says, in the order it is shown.
pub fn rows(summary: &Summary) -> Vec<Row> {
    let a = &summary.artifact;
    let mut rows: Vec<Row> = Vec::new();
    let mut row = |label: &str, value: String| rows.push((label.to_string(), value));
    match &summary.push {
        Some(push) => {
            row("Image", code(&push.reference));
            row(
                "Pushed",
                if push.up_to_date {
                    "already in the registry".to_string()
                } else {
                    format!(
                        "{} sent, {} already there",
                        human_size(push.bytes_sent),
                        human_size(push.bytes_skipped)
                    )
                },
            );
        }
        None => row("Image", code(&a.oci_reference)),
    }
    row("Digest", code(&a.digest));
    match (&summary.signature, &summary.attestation) {
        (Some(sig), Some(att)) => {
            row(
                "Signature",
                format!("{} by {}", code(&sig.tag), text(&sig.key)),
            );
            row(
                "SBOM",
                format!(
                    "CycloneDX, {} components, {} (attested as {})",
                    att.components,
                    code(&att.sbom_digest),
                    code(&att.tag)
                ),
            );
        }
        _ => row(
            "Signature",
            "none yet: built with `--no-publish`; `kiln publish` signs and attests it".into(),
        ),
    }
    row(
        "Artifact",
        format!(
            "Wasm {}, {}, {}",
            text(&summary.build.wasm_kind),
            code(&a.os),
            human_size(a.size)
        ),
    );
    row(
        "Project",
        format!(
            "{}, entry {}",
            text(&summary.project.language),
            prose(&summary.project.entry)
        ),
    );
    row("Toolchain", prose(&summary.build.toolchain));
    for fact in &summary.build.facts {
        row(&text(&fact.name), code(&fact.value));
    }
    if let Some(cache) = &summary.cache {
        for kind in &cache.kinds {
            let saved = if kind.saved {
                format!("saved, {} uploaded", human_size(kind.bytes_uploaded))
            } else {
                format!(
                    "not saved ({})",
                    text(kind.save_skipped.as_deref().unwrap_or("skipped"))
                )
            };
            row(
                "Cache",
                format!(
                    "{} {}, {} restored; {saved}",
                    text(&kind.kind),
                    kind.hit,
                    human_size(kind.bytes_restored)
                ),
            );
        }
        for warning in &cache.warnings {
            row("Cache warning", text(warning));
        }
    }
    row(
        "Inputs",
        if summary.skipped {
            format!(
                "{} unchanged: nothing rebuilt",
                code(&summary.inputs_digest)
            )
        } else {
            code(&summary.inputs_digest)
        },
    );
    if let Some(created) = &a.created {
        row("Created", code(created));
    }
    rows
}

/// The summary as Markdown.
pub fn render(summary: &Summary) -> String {
    let p = &summary.project;
    let mut out = String::new();
    let version = p
        .version
        .as_deref()
        .map(|v| format!(" {}", code(v)))
        .unwrap_or_default();
    let state = if summary.skipped { "reused" } else { "built" };
    let _ = writeln!(out, "### kiln {state} {}{version}\n", code(&p.name));
    out.push_str("| | |\n|:--|:--|\n");
    for (label, value) in rows(summary) {
        let _ = writeln!(out, "| **{label}** | {} |", cell(&value));
    }
    if !summary.stages.is_empty() {
        let total: f64 = summary.stages.iter().map(|s| s.seconds).sum();
        let _ = write!(
            out,
            "\n<details><summary>Stages: {total:.1} s</summary>\n\n| stage | time |\n|:--|--:|\n"
        );
        for stage in &summary.stages {
            let _ = match &stage.skipped {
                None => writeln!(out, "| {} | {:.1} s |", stage.stage, stage.seconds),
                Some(why) => writeln!(out, "| {} | skipped: {} |", stage.stage, cell(&text(why))),
            };
        }
        out.push_str("\n</details>\n");
    }
    let _ = write!(
        out,
        "\n<sub>kiln {} · summary schema {}</sub>\n",
        text(&summary.kiln_version),
        summary.schema_version
    );
    out
}

/// `markdown` cut to at most `limit` bytes, at a line end where it can, with a note that
/// it was cut (and any `<details>` it cut into closed).
pub fn truncate(markdown: String, limit: usize) -> String {
    if markdown.len() <= limit {
        return markdown;
    }
    const NOTE: &str = "\n\n*Truncated: the whole summary is in the job log.*\n";
    const CLOSE: &str = "\n</details>";
    let budget = limit.saturating_sub(NOTE.len() + CLOSE.len());
    // The longest prefix within the budget that ends on a char boundary, then cut at
    // its last line end.
    let mut used = 0;
    let mut out: String = markdown
        .chars()
        .take_while(|c| {
            used += c.len_utf8();
            used <= budget
        })
        .collect();
    if let Some((head, _)) = out.rsplit_once('\n') {
        out = head.to_string();
    }
    if out.matches("<details>").count() > out.matches("</details>").count() {
        out.push_str(CLOSE);
    }
    if out.len() + NOTE.len() <= limit {
        out.push_str(NOTE);
    }
    out
}

/// Inline code, with a fence longer than any backtick run inside.
pub fn code(value: &str) -> String {
    let value = one_line(value);
    // "``" is no code span, but two backticks shown as they are.
    if value.is_empty() {
        return String::new();
    }
    let mut longest = 0;
    let mut run = 0;
    for c in value.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    if longest > 0 {
        format!("{fence} {value} {fence}")
    } else {
        format!("{fence}{value}{fence}")
    }
}

/// Plain text, with what Markdown or HTML would read as markup escaped.
pub fn text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in one_line(value).chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '#' | '~' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// A phrase kiln wrote, which may mark names up as code (`` bin `app` of package `app` ``):
/// each backtick pair becomes a code span of its own, and the text between them is
/// escaped like [`text`], so a name from the project cannot close a span and write a
/// link. Unpaired backticks make the whole phrase plain text. A phrase without backticks
/// is shown as code.
pub fn prose(value: &str) -> String {
    if !value.contains('`') {
        return code(value);
    }
    let line = one_line(value);
    let parts: Vec<&str> = line.split('`').collect();
    if parts.len().is_multiple_of(2) {
        return text(&line);
    }
    // Spans with nothing between them ("`a``b`") are one span: written side by side,
    // their fences would run together into a longer fence that closes neither.
    let mut out = String::new();
    let mut span = String::new();
    for (i, part) in parts.iter().enumerate() {
        if i % 2 == 1 {
            span.push_str(part);
        } else if !part.is_empty() || i == 0 || i == parts.len() - 1 {
            out.push_str(&code(&std::mem::take(&mut span)));
            out.push_str(&text(part));
        }
    }
    out
}

/// A table cell: `|` would end it, even inside code.
fn cell(markdown: &str) -> String {
    markdown.replace('|', "\\|")
}

fn one_line(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::tests::summary;

    #[test]
    fn renders_the_facts_a_reviewer_needs() {
        let md = render(&summary());
        assert!(md.starts_with("### kiln built `hello` `1.2.3`\n"), "{md}");
        assert!(md.contains("| **Digest** | `sha256:aaaa"), "{md}");
        assert!(
            md.contains("| **Image** | `oci:/work/hello/.kiln/oci:hello:1.2.3` |"),
            "{md}"
        );
        assert!(md.contains("| **target** | `wasm32-wasip1` |"), "{md}");
        assert!(md.contains("| build | 1.5 s |"), "{md}");
        assert!(md.contains("Wasm module, `wasip1`, 795.00 kB"), "{md}");
        assert!(
            md.contains("| **SBOM** | CycloneDX, 12 components, `sha256:ffff"),
            "{md}"
        );
        assert!(
            md.contains(".sig` by kiln's local development key |"),
            "{md}"
        );
    }

    /// A CommonMark reader with GitHub's extensions, as GitHub and GitLab render.
    fn parse(markdown: &str) -> Vec<pulldown_cmark::Event<'_>> {
        use pulldown_cmark::{Options, Parser};
        let options = Options::ENABLE_TABLES
            | Options::ENABLE_STRIKETHROUGH
            | Options::ENABLE_TASKLISTS
            | Options::ENABLE_FOOTNOTES;
        Parser::new_ext(markdown, options).collect()
    }

    /// What a reader sees of `events`, without whitespace (which Markdown may trim);
    /// `Err` names any markup other than text and code spans.
    fn seen(events: &[pulldown_cmark::Event<'_>]) -> Result<String, String> {
        use pulldown_cmark::{Event, Tag, TagEnd};
        let mut out = String::new();
        for event in events {
            match event {
                Event::Text(t) | Event::Code(t) => out.push_str(t),
                Event::Start(Tag::Paragraph | Tag::TableCell | Tag::TableRow | Tag::TableHead)
                | Event::Start(Tag::Table(_))
                | Event::End(
                    TagEnd::Paragraph
                    | TagEnd::TableCell
                    | TagEnd::TableRow
                    | TagEnd::TableHead
                    | TagEnd::Table,
                ) => {}
                other => return Err(format!("{other:?}")),
            }
        }
        Ok(out.chars().filter(|c| !c.is_whitespace()).collect())
    }

    fn squeezed(value: &str) -> String {
        one_line(value)
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect()
    }

    /// Strings built from what Markdown and HTML read as markup (whole constructs and
    /// their pieces), and anything else.
    fn hostile() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        const PIECES: &[&str] = &[
            "[x](http://e)",
            "![i](x)",
            "<http://e>",
            "<b>",
            "</b>",
            "<img src=x>",
            "<!--",
            "-->",
            "`",
            "``",
            "*e*",
            "**",
            "_e_",
            "~~s~~",
            "# h",
            "\n- l",
            "\n1. l",
            "&amp;",
            "&#96;",
            "&lt;",
            "\\",
            "|",
            "[^1]",
            "[ ]",
            "[",
            "](",
            ")",
            "]",
            "(",
            "!",
            ":",
            "www.e.com",
            " ",
            "\t",
            "\r",
            "a",
            "é",
            "=",
            "---",
        ];
        prop_oneof![
            4 => proptest::collection::vec(proptest::sample::select(PIECES), 0..12)
                .prop_map(|pieces| pieces.concat()),
            1 => any::<String>(),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Whatever a project or registry names itself, escaped by `text`, `code` or
        /// `prose` it reads back as the same characters and never as a link, an image,
        /// HTML, emphasis, a heading or a line break; in a table cell it stays one cell.
        #[test]
        fn hostile_values_read_back_as_themselves(value in hostile()) {
            let backticks = value.matches('`').count();
            let in_prose = if backticks % 2 == 0 { value.replace('`', "") } else { value.clone() };
            for (name, escaped, expected) in [
                ("text", text(&value), squeezed(&value)),
                ("code", code(&value), squeezed(&value)),
                ("prose", prose(&value), squeezed(&in_prose)),
            ] {
                let line = format!("a {escaped} z");
                let read = seen(&parse(&line));
                proptest::prop_assert_eq!(
                    read.clone(), Ok(format!("a{expected}z")), "{} of {:?} is {:?}", name, value, line
                );
                let table = format!("| k | v |\n|---|---|\n| a | {} |\n", cell(&escaped));
                let events = parse(&table);
                let cells = events
                    .iter()
                    .filter(|e| matches!(e, pulldown_cmark::Event::Start(pulldown_cmark::Tag::TableCell)))
                    .count();
                proptest::prop_assert_eq!(cells, 4, "{} of {:?} in {:?}", name, value, table);
                proptest::prop_assert!(seen(&events).is_ok(), "{} of {:?} in {:?}: {:?}", name, value, table, seen(&events));
            }
        }
    }

    #[test]
    fn the_marker_names_the_artifact() {
        let mut s = summary();
        assert_eq!(marker(&s), "<!-- kiln-summary: hello -->");
        s.artifact.reference = "evil-->x--y:1".into();
        assert_eq!(marker(&s), "<!-- kiln-summary: evil-x-y -->");
        assert!(sticky(&s, 10_000).starts_with("<!-- kiln-summary: evil-x-y -->\n### kiln"));
    }

    #[test]
    fn values_cannot_break_the_table() {
        assert_eq!(code("a`b"), "`` a`b ``");
        assert_eq!(cell(&code("a|b")), "`a\\|b`");
        assert_eq!(text("<b>x_y</b>"), "&lt;b&gt;x\\_y&lt;/b&gt;");
        assert_eq!(code("two\nlines"), "`two lines`");
        assert_eq!(prose("bin `app` of <pkg>"), "bin `app` of &lt;pkg&gt;");
        assert_eq!(prose("app.py"), "`app.py`");
        // Found by the property below: two spans side by side would read as one
        // span holding "``".
        assert_eq!(prose("`a``b` c"), "`ab` c");
    }

    /// A link outside a code span: `[` and `](` that no backslash escapes. Code spans as
    /// CommonMark reads them: a run of n backticks up to the next run of exactly n.
    fn has_link(markdown: &str) -> bool {
        let bytes = markdown.as_bytes();
        let run = |at: usize| bytes[at..].iter().take_while(|&&b| b == b'`').count();
        let (mut i, mut open) = (0, false);
        while i < bytes.len() {
            match bytes[i] {
                b'\\' => i += 1,
                b'`' => {
                    let n = run(i);
                    let mut j = i + n;
                    let mut end = None;
                    while j < bytes.len() {
                        if bytes[j] == b'`' {
                            let m = run(j);
                            if m == n {
                                end = Some(j + m);
                                break;
                            }
                            j += m;
                        } else {
                            j += 1;
                        }
                    }
                    i = end.unwrap_or(i + n);
                    continue;
                }
                b'[' => open = true,
                b']' if open && bytes.get(i + 1) == Some(&b'(') => return true,
                _ => {}
            }
            i += 1;
        }
        false
    }

    #[test]
    fn names_from_the_project_cannot_write_links() {
        for hostile in [
            "bin `x` [click](https://evil.example) of package `p`",
            "entry `a` ](https://evil.example) `b`",
            "`x` [a](https://evil.example)",
            "odd ` [a](https://evil.example)",
            "app[a](https://evil.example).py",
            "``a`` [a](https://evil.example) ``",
            "<a href=https://evil.example>x</a>",
        ] {
            for rendered in [prose(hostile), text(hostile), code(hostile)] {
                assert!(!has_link(&rendered), "{hostile:?} rendered as {rendered:?}");
            }
            // Outside code spans, HTML is escaped.
            assert!(!text(hostile).contains("<a "), "{}", text(hostile));
        }
        assert!(has_link("[a](b)"), "the checker finds links");
    }

    #[test]
    fn truncation_stays_under_the_limit_and_says_so() {
        let mut s = summary();
        s.build.facts = (0..5000)
            .map(|i| crate::summary::Fact {
                name: format!("fact{i}"),
                value: "é".repeat(20),
            })
            .collect();
        let whole = sticky(&s, usize::MAX);
        assert!(whole.len() > GITHUB_COMMENT_LIMIT);
        let cut = sticky(&s, GITHUB_COMMENT_LIMIT);
        assert!(cut.len() <= GITHUB_COMMENT_LIMIT, "{}", cut.len());
        assert!(cut.starts_with(&marker(&s)));
        assert!(cut.ends_with("*Truncated: the whole summary is in the job log.*\n"));
        // Cut at a line end: no half row.
        let before_note =
            cut.trim_end_matches("\n\n*Truncated: the whole summary is in the job log.*\n");
        assert!(
            before_note.ends_with(" |"),
            "{}",
            &before_note[before_note.len() - 40..]
        );
    }

    #[test]
    fn truncation_closes_a_cut_details_block() {
        let body = format!(
            "head\n<details><summary>x</summary>\n\n{}",
            "| row |\n".repeat(100)
        );
        let cut = truncate(body, 200);
        assert!(cut.len() <= 200);
        assert!(cut.contains("</details>"), "{cut}");
        assert_eq!(truncate("short".into(), 200), "short");
        // A limit too small for the note still holds.
        assert!(truncate("x".repeat(100), 10).len() <= 10);
    }
}

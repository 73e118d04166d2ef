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

use super::{Failure, Report};
use crate::summary::{StageTiming, Summary, human_size};

/// `$GITHUB_STEP_SUMMARY`: 1 MiB per step.
pub const STEP_SUMMARY_LIMIT: usize = 1024 * 1024;
/// A GitHub issue or pull request comment: 65,536 characters (bytes here, to be safe).
pub const GITHUB_COMMENT_LIMIT: usize = 65_536;
/// A GitLab note: 1,000,000 characters.
pub const GITLAB_NOTE_LIMIT: usize = 1_000_000;

/// The hidden HTML comment that marks kiln's sticky comment for one artifact, so that two
/// kiln jobs in one pull request keep a comment each, and a failed build replaces the
/// comment of the last green one.
pub fn marker<'a>(report: impl Into<Report<'a>>) -> String {
    let (reference, project) = match report.into() {
        Report::Built(summary) => (&summary.artifact.reference, &summary.project.name),
        Report::Failed(failure) => (&failure.reference, &failure.project),
    };
    let name = reference
        .rsplit_once(':')
        .map_or(reference.as_str(), |(name, _)| name);
    let name = if name.is_empty() {
        project.as_str()
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

/// A comment or note body: the marker, then the report, within `limit` bytes.
pub fn sticky<'a>(report: impl Into<Report<'a>>, limit: usize) -> String {
    let report = report.into();
    truncate(format!("{}\n{}", marker(report), render(report)), limit)
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

/// The report as Markdown.
pub fn render<'a>(report: impl Into<Report<'a>>) -> String {
    match report.into() {
        Report::Built(summary) => render_summary(summary),
        Report::Failed(failure) => render_failure(failure),
    }
}

/// At most this much of a failure's error text is shown: the rest is in the job log.
pub const ERROR_TEXT_LIMIT: usize = 16 * 1024;

fn render_failure(failure: &Failure) -> String {
    let mut out = String::new();
    let version = failure
        .version
        .as_deref()
        .map(|v| format!(" {}", code(v)))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "### kiln failed to build {}{version}\n",
        code(&failure.project)
    );
    let _ = writeln!(out, "The **{}** stage failed:\n", failure.stage);
    let mut error = failure.causes.join("\nCaused by: ");
    if error.len() > ERROR_TEXT_LIMIT {
        error = super::prefix_within(&error, ERROR_TEXT_LIMIT).to_string();
        error.push_str("\n…(cut: the whole error is in the job log)");
    }
    out.push_str(&fenced(&error));
    if let Some(hint) = &failure.hint {
        // Hints mark commands up as code.
        let hint = if hint.contains('`') {
            prose(hint)
        } else {
            text(hint)
        };
        let _ = writeln!(out, "\n**Hint:** {hint}");
    }
    stage_table(&mut out, &failure.stages);
    let _ = write!(out, "\n<sub>kiln {}</sub>\n", text(&failure.kiln_version));
    out
}

/// The stage times, folded away.
fn stage_table(out: &mut String, stages: &[StageTiming]) {
    if stages.is_empty() {
        return;
    }
    let total: f64 = stages.iter().map(|s| s.seconds).sum();
    let _ = write!(
        out,
        "\n<details><summary>Stages: {total:.1} s</summary>\n\n| stage | time |\n|:--|--:|\n"
    );
    for stage in stages {
        let _ = match &stage.skipped {
            None => writeln!(out, "| {} | {:.1} s |", stage.stage, stage.seconds),
            Some(why) => writeln!(out, "| {} | skipped: {} |", stage.stage, cell(&text(why))),
        };
    }
    out.push_str("\n</details>\n");
}

fn render_summary(summary: &Summary) -> String {
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
    stage_table(&mut out, &summary.stages);
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
    // The longest prefix within the budget, cut at its last line end.
    let head = super::prefix_within(&markdown, budget);
    let mut out = head
        .rsplit_once('\n')
        .map_or(head, |(head, _)| head)
        .to_string();
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
    let longest = longest_backtick_run(&value);
    let fence = "`".repeat(longest + 1);
    if longest > 0 {
        format!("{fence} {value} {fence}")
    } else {
        format!("{fence}{value}{fence}")
    }
}

/// A fenced code block showing `value` line by line as it is: the fence is longer than
/// any backtick run inside, and control characters other than line ends are blanked.
pub fn fenced(value: &str) -> String {
    let value = value.replace("\r\n", "\n");
    let value: String = value
        .chars()
        .map(|c| if c.is_control() && c != '\n' { ' ' } else { c })
        .collect();
    let longest = longest_backtick_run(&value);
    let fence = "`".repeat((longest + 1).max(3));
    format!("{fence}text\n{value}\n{fence}\n")
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

/// The most backticks in a row in `value`: a code fence must be longer.
fn longest_backtick_run(value: &str) -> usize {
    let mut longest = 0;
    let mut run = 0;
    for c in value.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    longest
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

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1000))]

        /// An error text of any lines shows in one code block, as the same text.
        #[test]
        fn fenced_text_reads_back_as_one_code_block(lines in proptest::collection::vec(hostile(), 1..4)) {
            use pulldown_cmark::{CodeBlockKind, Event, Tag, TagEnd};
            let value = lines.join("\n");
            let markdown = format!("before\n\n{}\nafter\n", fenced(&value));
            let events = parse(&markdown);
            let block: Vec<&Event<'_>> = events
                .iter()
                .skip_while(|e| !matches!(e, Event::Start(Tag::CodeBlock(_))))
                .collect();
            proptest::prop_assert!(
                matches!(block.first(), Some(Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(info)))) if info.as_ref() == "text"),
                "{:?}", events
            );
            let end = block.iter().position(|e| matches!(e, Event::End(TagEnd::CodeBlock))).unwrap_or(0);
            let inside: String = block.get(1..end).unwrap_or_default().iter().map(|e| match e {
                Event::Text(t) => t.to_string(),
                other => format!("<{other:?}>"),
            }).collect();
            let expected: String = value
                .replace("\r\n", "\n")
                .chars()
                .map(|c| if c.is_control() && c != '\n' { ' ' } else { c })
                .collect();
            proptest::prop_assert_eq!(inside, format!("{expected}\n"));
            // The paragraph after it is still a paragraph: the block was closed.
            proptest::prop_assert!(
                matches!(block.get(end + 1..end + 3), Some([Event::Start(Tag::Paragraph), Event::Text(t)]) if t.as_ref() == "after"),
                "{:?}", events
            );
        }
    }

    fn failure() -> Failure {
        Failure {
            reference: "hello:1.2.3".into(),
            project: "hello".into(),
            version: Some("1.2.3".into()),
            stage: crate::reporter::Stage::Build,
            causes: vec![
                "cargo failed to build `hello`".into(),
                "error[E0425]: cannot find value `x` in this scope\n --> src/main.rs:2:5".into(),
            ],
            hint: Some("fix the error above, then run `kiln build` again".into()),
            stages: summary().stages,
            kiln_version: "0.1.0".into(),
        }
    }

    #[test]
    fn a_failure_says_which_stage_broke_and_why() {
        let md = render(&failure());
        assert!(
            md.starts_with("### kiln failed to build `hello` `1.2.3`\n"),
            "{md}"
        );
        assert!(md.contains("The **build** stage failed:\n\n```text\ncargo failed to build `hello`\nCaused by: error[E0425]"), "{md}");
        assert!(md.contains(" --> src/main.rs:2:5\n```\n"), "{md}");
        assert!(
            md.contains("**Hint:** fix the error above, then run `kiln build` again"),
            "{md}"
        );
        assert!(md.contains("| build | 1.5 s |"), "{md}");
        // It replaces the comment of the same artifact's last green build.
        assert_eq!(marker(&failure()), marker(&summary()));
        assert!(
            sticky(&failure(), 1000).starts_with("<!-- kiln-summary: hello -->\n### kiln failed")
        );
    }

    #[test]
    fn a_long_error_is_cut_on_a_character() {
        let mut long = failure();
        long.causes = vec!["é".repeat(ERROR_TEXT_LIMIT)];
        let md = render(&long);
        assert!(
            md.contains("…(cut: the whole error is in the job log)\n```\n"),
            "{md}"
        );
        assert!(md.len() < 2 * ERROR_TEXT_LIMIT);
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

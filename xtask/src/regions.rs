//! Generated regions inside hand-written files.
//!
//! A region starts at a line containing `BEGIN GENERATED <name>` and ends at the next
//! line containing `END GENERATED <name>`, whatever comment syntax the file uses. The
//! lines between are replaced; every generated line takes the indentation of the
//! `BEGIN` line. A region may occur several times in one file (the same content each
//! time), and everything outside regions is left as it is.

use anyhow::{Context, Result, bail};

/// Replaces every region of `text` by `render(name)`; fails on a region `render` does
/// not know, an unterminated region, or a file without any region.
pub fn fill(text: &str, render: &dyn Fn(&str) -> Option<String>) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut lines = text.split_inclusive('\n').enumerate();
    let mut found = 0;
    while let Some((number, line)) = lines.next() {
        out.push_str(line);
        let Some(name) = marker(line, "BEGIN GENERATED ") else {
            continue;
        };
        found += 1;
        let indent: String = line.chars().take_while(|c| c.is_whitespace()).collect();
        let content = render(name)
            .with_context(|| format!("line {}: unknown generated region `{name}`", number + 1))?;
        for generated in content.lines() {
            if generated.is_empty() {
                out.push('\n');
            } else {
                out.push_str(&indent);
                out.push_str(generated);
                out.push('\n');
            }
        }
        loop {
            let Some((_, line)) = lines.next() else {
                bail!(
                    "line {}: region `{name}` has no `END GENERATED {name}`",
                    number + 1
                );
            };
            if marker(line, "END GENERATED ") == Some(name) {
                out.push_str(line);
                break;
            }
        }
    }
    if found == 0 {
        bail!("no `BEGIN GENERATED` region");
    }
    Ok(out)
}

/// The region name after `keyword` on a marker line.
fn marker<'a>(line: &'a str, keyword: &str) -> Option<&'a str> {
    let rest = &line[line.find(keyword)? + keyword.len()..];
    rest.split_whitespace().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_regions_keeping_the_rest_and_the_indentation() {
        let text = "a:\n  # BEGIN GENERATED x\n  old\n  # END GENERATED x\nb\n    // BEGIN GENERATED x\n    // END GENERATED x\n";
        let filled = fill(text, &|name| (name == "x").then(|| "one\n\ntwo\n".into())).unwrap();
        assert_eq!(
            filled,
            "a:\n  # BEGIN GENERATED x\n  one\n\n  two\n  # END GENERATED x\nb\n    // BEGIN GENERATED x\n    one\n\n    two\n    // END GENERATED x\n"
        );
    }

    #[test]
    fn refuses_unknown_and_unterminated_regions() {
        let unknown = fill("# BEGIN GENERATED y\n# END GENERATED y\n", &|_| None);
        assert!(
            unknown
                .unwrap_err()
                .to_string()
                .contains("unknown generated region `y`")
        );
        let open = fill("# BEGIN GENERATED x\n", &|_| Some(String::new()));
        assert!(
            open.unwrap_err()
                .to_string()
                .contains("no `END GENERATED x`")
        );
        assert!(fill("plain\n", &|_| None).is_err());
    }
}

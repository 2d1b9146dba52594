//! The small pattern language of catalog signatures.
//!
//! - `telegram-desktop`: the whole name, compared without regard to case;
//! - `org.telegram.desktop._*.desktop`: a glob (`*`, `?`, `[abc]`, `{a,b}`), case-insensitive;
//! - `re:^Telegram Desktop`: a regular expression, case-insensitive, unanchored unless
//!   it says otherwise.
//!
//! Path patterns (the `files` signatures) are globs over the last components of a path,
//! separated by `/` whatever the OS: `Telegram/Telegram` is a file `Telegram` in a
//! folder `Telegram`; `*` never crosses a `/`.

use globset::{GlobBuilder, GlobMatcher};
use regex_automata::meta::{self, Regex};
use regex_automata::util::syntax;

/// A compiled name pattern.
#[derive(Debug, Clone)]
pub enum Pattern {
    Exact(String),
    Glob(GlobMatcher),
    Regex(Regex),
}

/// Why a pattern did not compile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError(pub String);

/// What starts a regular expression pattern.
pub const REGEX_PREFIX: &str = "re:";
const MAX_PATTERN_LEN: usize = 512;

impl Pattern {
    pub fn parse(text: &str) -> Result<Pattern, PatternError> {
        check_length(text)?;
        if let Some(expression) = text.strip_prefix(REGEX_PREFIX) {
            return compile_regex(expression).map(Pattern::Regex);
        }
        if is_glob(text) {
            return compile_glob(text, false).map(Pattern::Glob);
        }
        Ok(Pattern::Exact(text.to_lowercase()))
    }

    /// Checks a pattern's syntax without compiling it (compiling is the matcher's job,
    /// and costs far more than parsing).
    pub fn check(text: &str) -> Result<(), PatternError> {
        check_length(text)?;
        if let Some(expression) = text.strip_prefix(REGEX_PREFIX) {
            return regex_syntax::ParserBuilder::new()
                .case_insensitive(true)
                .build()
                .parse(expression)
                .map(|_| ())
                .map_err(|error| PatternError(format!("invalid regular expression: {error}")));
        }
        if is_glob(text) {
            return globset::Glob::new(text)
                .map(|_| ())
                .map_err(|error| PatternError(format!("invalid glob: {error}")));
        }
        Ok(())
    }

    /// Whether a name cut to its first characters (`lowered`, already lower-case) could
    /// be this pattern's: an exact name that starts with it. Globs and expressions are
    /// not guessed at.
    pub fn matches_cut(&self, lowered: &str) -> bool {
        match self {
            Pattern::Exact(expected) => expected.starts_with(lowered),
            Pattern::Glob(_) | Pattern::Regex(_) => false,
        }
    }

    pub fn matches(&self, candidate: &str) -> bool {
        match self {
            Pattern::Exact(expected) => {
                // Cheap path for the common ASCII case; full Unicode folding otherwise.
                if candidate.is_ascii() && expected.is_ascii() {
                    candidate.eq_ignore_ascii_case(expected)
                } else {
                    candidate.to_lowercase() == *expected
                }
            }
            Pattern::Glob(glob) => glob.is_match(folded(candidate).as_ref()),
            Pattern::Regex(regex) => regex.is_match(candidate),
        }
    }
}

/// A catalog expression, case-insensitive, built without the lazy DFA (nor a full one).
/// Expressions are matched against short names (a version resource's fields, an
/// uninstall entry's name), where the bounded backtracker and the one-pass DFA are
/// nearly as quick (49 ns a match against 39 ns, measured); but a lazy DFA costs each
/// thread that first uses it a cache of its own, about 17,000 instructions per
/// expression, and each of a scan's sources runs on a thread of its own: the
/// executable inventory's thread spent more on those caches than on its matching
/// (docs/performance.md).
fn compile_regex(expression: &str) -> Result<Regex, PatternError> {
    meta::Builder::new()
        .configure(
            meta::Config::new()
                .hybrid(false)
                .dfa(false)
                .nfa_size_limit(Some(1 << 20)),
        )
        .syntax(syntax::Config::new().case_insensitive(true))
        .build(expression)
        .map_err(|error| PatternError(format!("invalid regular expression: {error}")))
}

/// A compiled path-tail pattern, see the module documentation.
#[derive(Debug, Clone)]
pub struct PathPattern {
    components: usize,
    glob: GlobMatcher,
    /// The last component as its own pattern, so walkers can ask cheaply whether a
    /// file name could match before they assemble the tail.
    file_name: Pattern,
    /// Whether `file_name` alone can rule a path out (see [`file_name_decides`]), so
    /// most paths are turned down without the whole glob.
    file_name_decides: bool,
}

impl PathPattern {
    pub fn parse(text: &str) -> Result<PathPattern, PatternError> {
        let trimmed = normalize_path_pattern(text)?;
        let trimmed = trimmed.as_str();
        let components = trimmed.split('/').count();
        let last = trimmed.rsplit('/').next().unwrap_or(trimmed);
        Ok(PathPattern {
            components,
            glob: compile_glob(trimmed, true)?,
            file_name: Pattern::parse(last)?,
            file_name_decides: file_name_decides(trimmed, last),
        })
    }

    /// Checks a path pattern's syntax without compiling it.
    pub fn check(text: &str) -> Result<(), PatternError> {
        let trimmed = normalize_path_pattern(text)?;
        let trimmed = trimmed.as_str();
        Pattern::check(trimmed)
    }

    pub fn file_name_matches(&self, file_name: &str) -> bool {
        self.file_name.matches(file_name)
    }

    /// The last component's own pattern.
    pub fn file_name(&self) -> &Pattern {
        &self.file_name
    }

    /// Matches the tail of `path` (components separated by `/` or `\`).
    pub fn matches_path(&self, path: &str) -> bool {
        if self.file_name_decides {
            let name_start = path
                .bytes()
                .rposition(|byte| matches!(byte, b'/' | b'\\'))
                .map_or(0, |separator| separator + 1);
            let name = &path[name_start..];
            if name.is_ascii() && !self.file_name.matches(name) {
                return false;
            }
        }
        self.tail_matches(self.tail(path))
    }

    /// The last `components` components of `path`.
    fn tail<'p>(&self, path: &'p str) -> &'p str {
        let mut cut = path.len();
        let bytes = path.as_bytes();
        let mut seen = 0;
        // Walk back over `components` separators to find where the tail starts.
        while cut > 0 {
            if matches!(bytes[cut - 1], b'/' | b'\\') {
                seen += 1;
                if seen == self.components {
                    break;
                }
            }
            cut -= 1;
        }
        &path[cut..]
    }

    /// Whether the whole glob matches a tail.
    fn tail_matches(&self, tail: &str) -> bool {
        let tail = folded(tail);
        if tail.contains('\\') {
            self.glob.is_match(tail.replace('\\', "/"))
        } else {
            self.glob.is_match(tail.as_ref())
        }
    }
}

/// Whether a path pattern's last component (`last`, parsed on its own) turns down
/// exactly the ASCII file names the whole glob's last component does: when it is ASCII
/// (the same case folding either way), not read as a regular expression, and no brace
/// or class spans a `/` (none before the last component, balanced within it).
fn file_name_decides(pattern: &str, last: &str) -> bool {
    let before_last = &pattern[..pattern.len() - last.len()];
    let count = |text: &str, wanted: char| text.chars().filter(|c| *c == wanted).count();
    last.is_ascii()
        && !last.starts_with(REGEX_PREFIX)
        && !before_last.contains(['{', '}', '[', ']'])
        && count(last, '{') == count(last, '}')
        && count(last, '[') == count(last, ']')
}

/// Whether a pattern (that is not a regular expression) is a glob. Braces only make a
/// glob with a comma (`discord{,-ptb}`): a braced GUID such as an upgrade code
/// `{CC3C191E-...}` or a key `{53F4...}_is1` is a plain name.
pub fn is_glob(text: &str) -> bool {
    text.contains(['*', '?', '[']) || (text.contains('{') && text.contains(','))
}

fn check_length(text: &str) -> Result<(), PatternError> {
    if text.is_empty() {
        return Err(PatternError("empty pattern".into()));
    }
    if text.len() > MAX_PATTERN_LEN {
        return Err(PatternError(format!(
            "pattern longer than {MAX_PATTERN_LEN} bytes"
        )));
    }
    Ok(())
}

/// A path pattern with `/` separators and no leading or trailing `/`.
fn normalize_path_pattern(text: &str) -> Result<String, PatternError> {
    let normalized = text.replace('\\', "/");
    let trimmed = normalized.trim_matches('/');
    if trimmed.is_empty() {
        return Err(PatternError("empty path pattern".into()));
    }
    if trimmed.split('/').any(|component| component == "**") {
        return Err(PatternError(
            "`**` is not supported in path patterns".into(),
        ));
    }
    Ok(trimmed.to_string())
}

/// A name as the globs compare it: globset folds only ASCII letters, so a name with
/// other letters (Cyrillic, say) is lower-cased whole, as the globs' own text is.
pub fn folded(name: &str) -> std::borrow::Cow<'_, str> {
    if name.is_ascii() {
        std::borrow::Cow::Borrowed(name)
    } else {
        std::borrow::Cow::Owned(name.to_lowercase())
    }
}

/// A case-insensitive glob; its text is lower-cased (see [`folded`]).
fn compile_glob(text: &str, literal_separator: bool) -> Result<GlobMatcher, PatternError> {
    GlobBuilder::new(&folded(text))
        .case_insensitive(true)
        .literal_separator(literal_separator)
        .backslash_escape(true)
        .build()
        .map(|glob| glob.compile_matcher())
        .map_err(|error| PatternError(format!("invalid glob: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The file-name shortcut never changes an answer: `matches_path` agrees with
        /// the whole glob on the tail, for the catalog's kinds of pattern and for
        /// paths made of their pieces, in any case, with either separator.
        #[test]
        fn the_file_name_shortcut_agrees_with_the_whole_glob(
            pattern in prop::sample::select(vec![
                "Telegram/Telegram", "Telegram Desktop/Telegram.exe", "viber*.AppImage",
                "discord{,-ptb}/Discord{,PTB}.exe", "Ay[uU]Gram/*.exe", "{a/b,c}/x.exe",
                "[ab/]x/y", "x/{a,b/c}", "app-*/Teams.exe", "re:tele/gram", "WhatsApp.Root.exe",
            ]),
            pieces in prop::collection::vec(prop::sample::select(vec![
                "telegram", "Telegram", "TELEGRAM.EXE", "Telegram.exe", "Telegram Desktop",
                "viber-x64.AppImage", "Discord", "discord-ptb", "DiscordPTB.exe", "AyuGram",
                "AyUGram", "x.exe", "y", "a", "b", "c", "app-1.2", "Teams.exe",
                "whatsapp.root.exe", "tele", "gram", "Ünïcode", "K", "x",
            ]), 1..5),
            backslashes in any::<bool>(),
        ) {
            let compiled = PathPattern::parse(pattern).expect("pattern compiles");
            let path = pieces.join(if backslashes { "\\" } else { "/" });
            let tail = compiled.tail(&path);
            prop_assert_eq!(compiled.matches_path(&path), compiled.tail_matches(tail));
        }
    }

    #[test]
    fn globs_ignore_the_case_of_cyrillic_letters_too() {
        let name = Pattern::parse("ВК Мессенджер*").unwrap();
        assert!(name.matches("вк мессенджер 6.2"));
        assert!(name.matches("ВК МЕССЕНДЖЕР"));
        assert!(!name.matches("VK Messenger"));
        let path = PathPattern::parse("ВК/ВК*.exe").unwrap();
        assert!(path.matches_path("/opt/ВК/ВК.exe"));
        assert!(path.matches_path("C:\\Программы\\вк\\вк-2.EXE"));
        assert!(!path.matches_path("/opt/вк/мах.exe"));
    }

    #[test]
    fn the_file_name_shortcut_leaves_braces_across_a_separator_to_the_glob() {
        // Its tail is counted by separators, so only a path as short as the pattern
        // meets the `{a}` branch.
        let across = PathPattern::parse("x/{a,b/c}").unwrap();
        assert!(across.matches_path("x/a"));
        assert!(across.matches_path("D:\\x\\b\\c"));
        assert!(!across.matches_path("/srv/x/d"));
        let plain = PathPattern::parse("Telegram/Telegram").unwrap();
        assert!(plain.matches_path("C:\\Users\\anna\\TELEGRAM\\telegram"));
        assert!(!plain.matches_path("/home/anna/Telegram/Telegraf"));
    }

    fn check(pattern: &str, candidate: &str, expected: bool) {
        let compiled = Pattern::parse(pattern).expect("pattern compiles");
        assert_eq!(
            compiled.matches(candidate),
            expected,
            "{pattern:?} against {candidate:?}"
        );
    }

    #[test]
    fn exact_names_ignore_case_and_nothing_else() {
        check("telegram-desktop", "telegram-desktop", true);
        check("telegram-desktop", "Telegram-Desktop", true);
        check("telegram-desktop", "telegram-desktop-data", false);
        check("telegram", "telegraf", false);
        check("Viber", "VibeSQL", false);
        check("微信", "微信", true);
        check("ВК Мессенджер", "вк мессенджер", true);
    }

    #[test]
    fn globs_and_regexes() {
        check(
            "org.telegram.desktop._*.desktop",
            "org.telegram.desktop._3a1b.desktop",
            true,
        );
        check(
            "org.telegram.desktop._*.desktop",
            "org.telegram.desktop.desktop",
            false,
        );
        check("discord{,-ptb,-canary}", "discord-ptb", true);
        check("re:^Telegram Desktop", "Telegram Desktop 4.9 64bit", true);
        check("re:^Telegram Desktop", "Unofficial Telegram Desktop", false);
        check("re:^discord$", "Discord", true);
        check("re:^discord$", "Discord Rich Presence", false);
        check(
            "{53F49750-6209-4FBF-9CA8-7A333C87D1ED}_is1",
            "{53f49750-6209-4fbf-9ca8-7a333c87d1ed}_is1",
            true,
        );
        check(
            "{CC3C191E-4119-4AB3-917A-96EAC8774E60}",
            "CC3C191E-4119-4AB3-917A-96EAC8774E60",
            false,
        );
    }

    #[test]
    fn bad_patterns_are_errors() {
        assert!(Pattern::parse("").is_err());
        assert!(Pattern::parse("re:(").is_err());
        assert!(Pattern::parse("[").is_err());
        assert!(Pattern::parse(&"a".repeat(600)).is_err());
        assert!(PathPattern::parse("**/x").is_err());
        assert!(PathPattern::parse("/").is_err());
    }

    #[test]
    fn path_patterns_match_the_tail_only() {
        let pattern = PathPattern::parse("Telegram/Telegram").expect("compiles");
        assert!(pattern.matches_path("/home/anna/Загрузки/tsetup/Telegram/Telegram"));
        assert!(pattern.matches_path(r"C:\Users\anna\Desktop\Telegram\Telegram"));
        assert!(!pattern.matches_path("/home/anna/Telegram"));
        assert!(!pattern.matches_path("/opt/NotTelegram/Telegram"));
        assert!(pattern.file_name_matches("telegram"));

        let appimage = PathPattern::parse("Telegram*.AppImage").expect("compiles");
        assert!(appimage.matches_path("/home/a/Apps/Telegram_Desktop-x86_64.AppImage"));
        assert!(!appimage.matches_path("/home/a/Apps/Telegram/x.AppImage"));

        let nested = PathPattern::parse(r"Tencent\WeChat\WeChat.exe").expect("compiles");
        assert!(nested.matches_path(r"C:\Program Files (x86)\Tencent\WeChat\WeChat.exe"));
        assert!(
            !nested.matches_path(r"C:\Program Files (x86)\Tencent\微信web开发者工具\WeChat.exe")
        );
    }
}

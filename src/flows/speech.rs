//! Matching what a caller said (Twilio's `SpeechResult`) to a menu option.
//!
//! Each option lists phrases in the flow file; the option whose phrases occur most
//! often (as whole words) wins, and a tie is no match, so the caller is asked again
//! rather than sent somewhere they did not ask for. Spoken key names ("three",
//! "option 3", "press three") always work.

/// Lower-case words separated by single spaces, apostrophes dropped ("don't" → "dont").
pub fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '\'' || c == '’' {
            continue;
        }
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        } else {
            out.push(' ');
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

const KEY_WORDS: [(char, &[&str]); 10] = [
    ('0', &["zero", "oh", "nought"]),
    ('1', &["one"]),
    ('2', &["two", "to", "too"]),
    ('3', &["three"]),
    ('4', &["four", "for"]),
    ('5', &["five"]),
    ('6', &["six"]),
    ('7', &["seven"]),
    ('8', &["eight"]),
    ('9', &["nine"]),
];

/// Words that ask for the menu again.
const REPEAT: &[&str] = &[
    "repeat",
    "say that again",
    "again",
    "star",
    "pardon",
    "what were the options",
];

/// What a spoken answer asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    Key(char),
    Repeat,
    Unclear,
}

fn contains_phrase(haystack: &str, phrase: &str) -> bool {
    let padded = format!(" {haystack} ");
    padded.contains(&format!(" {phrase} "))
}

/// The key a caller named out loud, if the whole answer is a key ("3", "three",
/// "option three", "press 3", "number three please").
fn spoken_key(words: &str) -> Option<char> {
    let trimmed = words
        .split(' ')
        .filter(|w| {
            !matches!(
                *w,
                "option" | "press" | "number" | "please" | "i" | "want" | "pressing" | "the"
            )
        })
        .collect::<Vec<_>>();
    if trimmed.len() != 1 {
        return None;
    }
    let w = trimmed[0];
    let mut chars = w.chars();
    if let (Some(c @ '0'..='9'), None) = (chars.next(), chars.next()) {
        return Some(c);
    }
    // Homophones ("to", "for", "oh") only count when the caller said nothing else.
    KEY_WORDS
        .iter()
        .find(|(_, names)| names.contains(&w))
        .map(|(k, _)| *k)
        .filter(|_| words.split(' ').count() <= 3)
}

/// Chooses among `options` (key, normalised phrases) for a spoken answer.
pub fn match_speech<'a>(
    speech: &str,
    options: impl IntoIterator<Item = (char, &'a [String])>,
) -> Heard {
    let words = normalise(speech);
    if words.is_empty() {
        return Heard::Unclear;
    }
    let options: Vec<(char, &[String])> = options.into_iter().collect();
    if let Some(k) = spoken_key(&words) {
        if options.iter().any(|(key, _)| *key == k) {
            return Heard::Key(k);
        }
    }
    let mut best: Option<(char, usize)> = None;
    let mut tie = false;
    for (key, phrases) in &options {
        let score = phrases
            .iter()
            .filter(|p| contains_phrase(&words, p))
            .count();
        if score == 0 {
            continue;
        }
        match best {
            Some((_, s)) if score < s => {}
            Some((_, s)) if score == s => tie = true,
            _ => {
                best = Some((*key, score));
                tie = false;
            }
        }
    }
    match best {
        Some((k, _)) if !tie => Heard::Key(k),
        Some(_) => Heard::Unclear,
        None if REPEAT.iter().any(|r| contains_phrase(&words, r)) => Heard::Repeat,
        None => Heard::Unclear,
    }
}

/// Digits in a spoken or keyed phone number: "oh seven seven hundred…" is not
/// attempted, but "07700 900123", "0 7 7 0 0…" and "zero seven seven…" are.
pub fn digits_from_speech(speech: &str) -> String {
    let mut out = String::new();
    for word in normalise(speech).split(' ') {
        if matches!(word, "to" | "too" | "for") {
            // Homophones of 2 and 4 are far more often just words here ("my number for calls is…").
            continue;
        }
        if word.chars().all(|c| c.is_ascii_digit()) {
            out.push_str(word);
        } else if word == "plus" {
            out.push('+');
        } else if let Some((k, _)) = KEY_WORDS.iter().find(|(_, names)| names.contains(&word)) {
            out.push(*k);
        } else if word == "double" || word == "treble" {
            // "double seven": repeat the next digit; handled by marking.
            out.push(if word == "double" { 'D' } else { 'T' });
        }
    }
    // Expand D/T markers.
    let mut expanded = String::new();
    let mut repeat = 1;
    for c in out.chars() {
        match c {
            'D' => repeat = 2,
            'T' => repeat = 3,
            c => {
                for _ in 0..repeat {
                    expanded.push(c);
                }
                repeat = 1;
            }
        }
    }
    expanded
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> Vec<(char, Vec<String>)> {
        let p = |v: &[&str]| v.iter().map(|s| normalise(s)).collect::<Vec<_>>();
        vec![
            (
                '1',
                p(&["latest update", "update", "news", "what happened"]),
            ),
            (
                '2',
                p(&[
                    "call back",
                    "callback",
                    "worried",
                    "my information",
                    "affected",
                ]),
            ),
            (
                '3',
                p(&[
                    "someone phoned",
                    "phoned me",
                    "contacted me",
                    "claiming",
                    "scam",
                    "fraud",
                    "suspicious",
                    "had my",
                ]),
            ),
            (
                '4',
                p(&["appointment", "appointments", "hospital services"]),
            ),
            (
                '0',
                p(&["adviser", "advisor", "speak to someone", "a person"]),
            ),
        ]
    }

    fn heard(s: &str) -> Heard {
        let o = opts();
        match_speech(s, o.iter().map(|(k, v)| (*k, v.as_slice())))
    }

    #[test]
    fn understands_callers() {
        assert_eq!(
            heard("Someone phoned me saying they had my records."),
            Heard::Key('3')
        );
        assert_eq!(heard("I got a suspicious text"), Heard::Key('3'));
        assert_eq!(
            heard("I'm worried my information was affected"),
            Heard::Key('2')
        );
        assert_eq!(
            heard("Is my appointment still going ahead?"),
            Heard::Key('4')
        );
        assert_eq!(heard("Can I speak to someone"), Heard::Key('0'));
        assert_eq!(heard("what's the latest update"), Heard::Key('1'));
        assert_eq!(heard("three"), Heard::Key('3'));
        assert_eq!(heard("Option 2."), Heard::Key('2'));
        assert_eq!(heard("press four please"), Heard::Key('4'));
        assert_eq!(heard("can you repeat that"), Heard::Repeat);
        assert_eq!(heard("bananas"), Heard::Unclear);
        assert_eq!(heard(""), Heard::Unclear);
        assert_eq!(heard("seven"), Heard::Unclear, "no option 7");
    }

    #[test]
    fn ties_are_unclear() {
        assert_eq!(heard("news about fraud"), Heard::Unclear);
    }

    #[test]
    fn digits_from_spoken_numbers() {
        assert_eq!(digits_from_speech("07700 900123"), "07700900123");
        assert_eq!(
            digits_from_speech("oh seven seven double oh nine oh oh one two three"),
            "07700900123"
        );
        assert_eq!(
            digits_from_speech("zero one five one, seven oh six, three six oh two"),
            "01517063602"
        );
        assert_eq!(digits_from_speech("plus 44 7700 900123"), "+447700900123");
    }
}

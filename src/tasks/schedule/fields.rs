//! The fields of a crontab line: what each accepts (bounds, names, symbols), the checks that
//! explain a bad field in words, croner's errors translated, and the expression in English.

use super::*;

/// One field of a crontab line: its name, bounds, and the words and symbols it accepts.
pub(super) struct FieldSpec {
    pub(super) name: &'static str,
    pub(super) min: u32,
    pub(super) max: u32,
    /// Names mapped to values (index + `name_base`).
    pub(super) names: &'static [&'static str],
    pub(super) name_base: u32,
    /// Extra punctuation allowed besides `* , - /`.
    pub(super) extra: &'static str,
    /// Letters allowed (as whole words, or as a suffix for day-of-week `L`).
    pub(super) letters: &'static [&'static str],
    /// What the field accepts, for messages.
    pub(super) accepted: &'static str,
}

pub(super) const SECOND: FieldSpec = FieldSpec {
    name: "second",
    min: 0,
    max: 59,
    names: &[],
    name_base: 0,
    extra: "",
    letters: &[],
    accepted: "seconds are 0-59",
};
pub(super) const MINUTE: FieldSpec = FieldSpec {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
    name_base: 0,
    extra: "",
    letters: &[],
    accepted: "minutes are 0-59",
};
pub(super) const HOUR: FieldSpec = FieldSpec {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
    name_base: 0,
    extra: "",
    letters: &[],
    accepted: "hours are 0-23",
};
pub(super) const DAY_OF_MONTH: FieldSpec = FieldSpec {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
    name_base: 0,
    extra: "?",
    letters: &["L", "LW"],
    accepted: "days of the month are 1-31, L (last day), LW (last weekday), 15W (weekday \
               nearest the 15th) or ?",
};
pub(super) const MONTH: FieldSpec = FieldSpec {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ],
    name_base: 1,
    extra: "",
    letters: &[],
    accepted: "months are 1-12 or JAN-DEC",
};
pub(super) const DAY_OF_WEEK: FieldSpec = FieldSpec {
    name: "day-of-week",
    min: 0,
    max: 7,
    names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
    name_base: 0,
    extra: "?#",
    letters: &["L"],
    accepted: "days of the week are 0-7 (0 and 7 are Sunday) or SUN-SAT, with 5L (last \
               Friday of the month), 5#2 (second Friday) or ?",
};
pub(super) const YEAR: FieldSpec = FieldSpec {
    name: "year",
    min: croner::YEAR_LOWER_LIMIT as u32,
    max: croner::YEAR_UPPER_LIMIT as u32,
    names: &[],
    name_base: 0,
    extra: "",
    letters: &[],
    accepted: "years are written in full, e.g. 2027 or 2027-2030",
};

impl FieldSpec {
    /// Lexical checks with precise messages: characters, words, value bounds, reversed
    /// ranges, zero steps, `#n` bounds. croner checks the structure afterwards.
    pub(super) fn validate(&self, raw: &str, expression: &str) -> Result<(), String> {
        let name = self.name;
        for original in raw.split(',') {
            // Letters are matched in upper case; messages quote the user's own spelling.
            let upper = original.to_ascii_uppercase();
            let item = upper.as_str();
            if item.is_empty() {
                return Err(format!(
                    "the {name} field \"{raw}\" of \"{expression}\" has an empty list item; \
                     separate values with single commas, e.g. 1,15"
                ));
            }
            let (base, step) = match item.split_once('/') {
                Some((base, step)) => (base, Some(step)),
                None => (item, None),
            };
            if let Some(step) = step {
                match step.parse::<u32>() {
                    Ok(0) => {
                        return Err(format!(
                            "the step \"/0\" in the {name} field of \"{expression}\" never \
                             advances; use a step of 1 or more, e.g. */15"
                        ))
                    }
                    Ok(_) => {}
                    Err(_) if step.chars().all(|c| c.is_ascii_digit()) && !step.is_empty() => {
                        return Err(format!(
                            "the step \"/{step}\" in the {name} field of \"{expression}\" is \
                             too large; {}",
                            self.accepted
                        ))
                    }
                    Err(_) => {
                        return Err(format!(
                        "\"{original}\" in the {name} field of \"{expression}\" has a step that \
                             is not a number; write */n or a-b/n, e.g. */15"
                    ))
                    }
                }
            }
            // Day-of-week `n#k`: check k here, n below.
            let base = match base.split_once('#') {
                Some((day, nth)) if self.extra.contains('#') => {
                    if !(nth == "L" || matches!(nth.parse::<u32>(), Ok(1..=5))) {
                        return Err(format!(
                            "\"{original}\" in the {name} field of \"{expression}\" asks for \
                             occurrence \"#{nth}\"; use #1 to #5, e.g. 5#2 for the second \
                             Friday of the month"
                        ));
                    }
                    day
                }
                _ => base,
            };
            let bounds: Vec<&str> = base.split('-').collect();
            let mut values = Vec::with_capacity(2);
            for token in &bounds {
                values.push(self.token_value(token, item, original, expression)?);
            }
            if let [Some(low), Some(high)] = values[..] {
                // `SUN` closing a range means 7 (`FRI-SUN`).
                let high = if bounds.get(1) == Some(&"SUN") {
                    7
                } else {
                    high
                };
                if low > high {
                    return Err(format!(
                        "the range \"{base}\" in the {name} field of \"{expression}\" runs \
                         backwards; write the smaller value first (a range cannot wrap \
                         around; use a list such as 22-23,0-2)"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Checks one range bound: a number in bounds, a name, `*`, `?`, or an allowed letter
    /// form. Returns its numeric value when it has one.
    pub(super) fn token_value(
        &self,
        token: &str,
        item: &str,
        original: &str,
        expression: &str,
    ) -> Result<Option<u32>, String> {
        let name = self.name;
        let accepted = self.accepted;
        if token.is_empty() || token == "*" || (token == "?" && self.extra.contains('?')) {
            return Ok(None);
        }
        if let Some(bad) = token
            .chars()
            .find(|c| !c.is_ascii_alphanumeric() && !"*?#".contains(*c))
        {
            return Err(format!(
                "\"{bad}\" is not allowed in the {name} field of \"{expression}\"; {accepted}"
            ));
        }
        if let Some(bad) = token
            .chars()
            .find(|c| "*?#".contains(*c) && !(self.extra.contains(*c) || *c == '*'))
        {
            return Err(format!(
                "\"{bad}\" is not allowed in the {name} field of \"{expression}\"; {accepted}"
            ));
        }
        let digits: String = token.chars().take_while(|c| c.is_ascii_digit()).collect();
        let letters = &token[digits.len()..];
        if !digits.is_empty() {
            let value = digits
                .parse::<u32>()
                .ok()
                .filter(|v| *v <= self.max && *v >= self.min);
            let Some(value) = value else {
                return Err(format!(
                    "{name} {digits} in \"{expression}\" is out of range; {accepted}"
                ));
            };
            if letters.is_empty() {
                return Ok(Some(value));
            }
            // `15W`, `5L`.
            let suffix_ok = match self.name {
                "day-of-month" => letters == "W",
                "day-of-week" => letters == "L",
                _ => false,
            };
            if suffix_ok && token == item {
                return Ok(Some(value));
            }
            return Err(format!(
                "\"{original}\" is not valid in the {name} field of \"{expression}\"; {accepted}"
            ));
        }
        // A name, possibly with the day-of-week `L` suffix (`FRIL`), or a bare letter form.
        if let Some(index) = self.names.iter().position(|n| *n == letters) {
            return Ok(Some(index as u32 + self.name_base));
        }
        if self.name == "day-of-week" {
            if let Some(stem) = letters.strip_suffix('L') {
                if self.names.contains(&stem) && token == item {
                    return Ok(None);
                }
            }
            if letters == "L" {
                return Err(format!(
                    "\"L\" in the day-of-week field of \"{expression}\" needs a day before it, \
                     e.g. 5L for the last Friday of the month"
                ));
            }
        } else if self.letters.contains(&letters) && token == item {
            return Ok(None);
        }
        // A full or misplaced name gets a pointed hint.
        let hint = if let Some(short) = self.names.iter().find(|n| letters.starts_with(*n)) {
            format!(" (use the three-letter name {short})")
        } else if DAY_OF_WEEK.names.contains(&letters) {
            " (day names belong in the fifth field of a 5-field line, day-of-week)".to_string()
        } else if MONTH.names.contains(&letters) {
            " (month names belong in the fourth field of a 5-field line, month)".to_string()
        } else {
            String::new()
        };
        Err(format!(
            "\"{original}\" is not valid in the {name} field of \"{expression}\"{hint}; {accepted}"
        ))
    }
}

/// croner's own messages are terse; find the field it objects to and say what it accepts.
pub(super) fn explain_croner_error(
    err: &CronError,
    fields: &[&str],
    specs: &[&FieldSpec],
    expression: &str,
    six_field_hint: &str,
) -> String {
    let six_field_hint = |spec: &FieldSpec| {
        if spec.name == DAY_OF_WEEK.name {
            six_field_hint
        } else {
            ""
        }
    };
    let reason = match err {
        CronError::ComponentError(msg)
        | CronError::InvalidPattern(msg)
        | CronError::IllegalCharacters(msg) => msg.trim_end_matches('.').to_string(),
        other => other.to_string().trim_end_matches('.').to_string(),
    };
    let reason = lowercase_first(&reason);
    let parser = croner_parser();
    for (i, spec) in specs.iter().enumerate() {
        let probe: Vec<&str> = (0..fields.len())
            .map(|j| if j == i { fields[j] } else { "*" })
            .collect();
        if parser.parse(&probe.join(" ")).is_err() {
            return format!(
                "the {} field \"{}\" of \"{expression}\" is not valid ({reason}); {}; write a \
                 value, a range a-b, a list a,b or a step */n or a-b/n{}",
                spec.name,
                fields[i],
                spec.accepted,
                six_field_hint(spec)
            );
        }
    }
    format!("\"{expression}\" is not a valid schedule ({reason}); {FIELD_COUNT_HELP}")
}

pub(super) fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// croner's description with its rough edges smoothed.
pub(super) fn english(cron: &Cron, fields: &[&str], specs: &[&FieldSpec]) -> String {
    let mut text = cron.describe();
    if let Some(rest) = text.strip_prefix("At every ") {
        text = format!("Every {rest}");
    }
    text = text.replace(", of hour ", " during hour ");
    // croner describes `LW` as the last day of the month; it is the last weekday.
    let dom_has_lw = specs.iter().zip(fields).any(|(spec, field)| {
        spec.name == "day-of-month" && field.to_ascii_uppercase().contains("LW")
    });
    if dom_has_lw {
        text = text.replace("the last day of the month", "the last weekday of the month");
    }
    if !text.ends_with('.') {
        text.push('.');
    }
    text
}

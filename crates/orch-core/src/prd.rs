//! The PRD (`prd.json`): `{"title": ..., "userStories": [{"id", "title", "passes", ...}]}`,
//! checked from its bytes. Pure: the facade reads the file through a port.

use serde_json::Value;

/// One user story of a PRD.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Story {
    /// Its id (`"US-1"`; numbers are read as their decimal text).
    pub id: String,
    /// Its title.
    pub title: String,
    /// Whether it is done.
    pub passes: bool,
    /// Its `priority`, when the PRD gives one (lower first).
    pub priority: Option<i64>,
    /// The ids of the stories it depends on (`dependsOn`).
    pub depends_on: Vec<String>,
}

/// A checked PRD.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Prd {
    /// Its title, if it has one.
    pub title: Option<String>,
    /// Its stories, in file order.
    pub stories: Vec<Story>,
}

impl Prd {
    /// Parses and checks PRD text. The error says what is wrong and what is expected.
    pub fn parse(bytes: &[u8]) -> Result<Prd, String> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| format!("it is not JSON: {e}"))?;
        let stories = value
            .get("userStories")
            .and_then(Value::as_array)
            .ok_or("it has no \"userStories\" array")?;
        if stories.is_empty() {
            return Err("its \"userStories\" array is empty; a PRD needs at least one story".into());
        }
        let mut out = Vec::with_capacity(stories.len());
        for (i, s) in stories.iter().enumerate() {
            let id = match s.get("id") {
                Some(Value::String(id)) if !id.is_empty() => id.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => return Err(needs(i)),
            };
            let title = s.get("title").and_then(Value::as_str).ok_or_else(|| needs(i))?;
            let passes = s.get("passes").and_then(Value::as_bool).ok_or_else(|| needs(i))?;
            if out.iter().any(|o: &Story| o.id == id) {
                return Err(format!(
                    "userStories[{i}] repeats the id {id:?}; story ids must be unique"
                ));
            }
            let depends_on = s
                .get("dependsOn")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|d| match d {
                            Value::String(s) => Some(s.clone()),
                            Value::Number(n) => Some(n.to_string()),
                            _ => None,
                        })
                        .collect()
                })
                .unwrap_or_default();
            out.push(Story {
                id,
                title: title.to_owned(),
                passes,
                priority: s.get("priority").and_then(Value::as_i64),
                depends_on,
            });
        }
        Ok(Prd {
            title: value.get("title").and_then(Value::as_str).map(str::to_owned),
            stories: out,
        })
    }

    /// (done, total) over every story.
    pub fn counts(&self) -> (usize, usize) {
        (self.stories.iter().filter(|s| s.passes).count(), self.stories.len())
    }

    /// The story with `id`, if there is one.
    pub fn story(&self, id: &str) -> Option<&Story> {
        self.stories.iter().find(|s| s.id == id)
    }
}

fn needs(i: usize) -> String {
    format!("userStories[{i}] needs \"id\" (a non-empty string or a number), \"title\" (a string) and \"passes\" (true or false)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check_err(text: &str, needle: &str) {
        let err = Prd::parse(text.as_bytes()).expect_err(text);
        assert!(err.contains(needle), "{err}");
    }

    #[test]
    fn a_good_prd_parses_with_its_fields() {
        let prd = Prd::parse(
            br#"{"title":"x","userStories":[
              {"id":"US-1","title":"a","passes":true,"priority":2},
              {"id":7,"title":"b","passes":false,"dependsOn":["US-1"]}]}"#,
        )
        .expect("parses");
        assert_eq!(prd.counts(), (1, 2));
        assert_eq!(prd.stories[0].priority, Some(2));
        assert_eq!(prd.story("7").expect("numeric id").depends_on, ["US-1"]);
    }

    #[test]
    fn bad_prds_say_what_is_wrong() {
        check_err("not json", "not JSON");
        check_err("{}", "userStories");
        check_err(r#"{"userStories":[]}"#, "at least one story");
        check_err(r#"{"userStories":[{"id":"1","title":"t"}]}"#, "passes");
        check_err(r#"{"userStories":[{"id":"","title":"t","passes":false}]}"#, "id");
        check_err(
            r#"{"userStories":[{"id":"1","title":"t","passes":false},{"id":"1","title":"u","passes":false}]}"#,
            "unique",
        );
    }
}

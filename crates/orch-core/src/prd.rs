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

impl Prd {
    /// The stories not done yet, in the order they should be worked on: by `priority` (lower
    /// first; stories without one after those with one), in file order among equals, and each
    /// story after the pending stories it depends on.
    pub fn work_order(&self) -> Vec<&Story> {
        let mut pending: Vec<(usize, &Story)> = self.stories.iter().enumerate().filter(|(_, s)| !s.passes).collect();
        pending.sort_by_key(|(i, s)| (s.priority.unwrap_or(i64::MAX), *i));
        // Stable topological order: a story goes out once every pending story it depends on has.
        let mut out: Vec<&Story> = Vec::with_capacity(pending.len());
        let mut left: Vec<&Story> = pending.into_iter().map(|(_, s)| s).collect();
        while !left.is_empty() {
            let ready = left.iter().position(|s| {
                s.depends_on
                    .iter()
                    .all(|d| !left.iter().any(|o| &o.id == d) || out.iter().any(|o| &o.id == d))
            });
            // A dependency cycle: take the next one as it comes.
            let k = ready.unwrap_or(0);
            out.push(left.remove(k));
        }
        out
    }
}

/// Splits the stories not done and not in `held` into at most `n` groups for `n` parallel
/// sessions: in [`Prd::work_order`], contiguous, as even as possible, and a story in the same
/// group as a pending story it depends on (so one agent does them in order). Fewer stories
/// than `n` give fewer groups; no story is in two groups.
pub fn plan_parallel(prd: &Prd, held: &[String], n: usize) -> Vec<Vec<String>> {
    let order: Vec<&Story> = prd.work_order().into_iter().filter(|s| !held.contains(&s.id)).collect();
    if n == 0 || order.is_empty() {
        return Vec::new();
    }
    // Chains: a story joins the chain of a pending story it depends on.
    let mut chains: Vec<Vec<String>> = Vec::new();
    for s in &order {
        let home = chains.iter().position(|c| s.depends_on.iter().any(|d| c.contains(d)));
        match home {
            Some(k) => chains[k].push(s.id.clone()),
            None => chains.push(vec![s.id.clone()]),
        }
    }
    let groups = n.min(chains.len());
    let total = order.len();
    let mut out: Vec<Vec<String>> = Vec::with_capacity(groups);
    let mut placed = 0;
    let mut chains = chains.into_iter().peekable();
    for g in 0..groups {
        let left_groups = groups - g;
        let target = (total - placed).div_ceil(left_groups);
        let mut group = Vec::new();
        loop {
            // Leave at least one chain for each group still to fill.
            let chains_left = chains.len();
            let Some(c) = chains.peek() else { break };
            if !group.is_empty() && (group.len() + c.len() > target || chains_left < left_groups) {
                break;
            }
            let c = chains.next().unwrap_or_default();
            placed += c.len();
            group.extend(c);
            if group.len() >= target {
                break;
            }
        }
        out.push(group);
    }
    // Whatever did not fit goes to the last group.
    if let Some(last) = out.last_mut() {
        for c in chains {
            last.extend(c);
        }
    }
    out.retain(|g| !g.is_empty());
    out
}

/// Where each story of a PRD's text is: the spans a text edit needs, so an edit changes only
/// what it must and keeps every other byte (key order, spacing) as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Spans {
    /// After the `[` of `userStories` and before its `]`.
    inside: std::ops::Range<usize>,
    /// Each story object: its id, its whole text, and its `passes` value.
    stories: Vec<(String, std::ops::Range<usize>, Option<std::ops::Range<usize>>)>,
}

/// A minimal JSON scanner over bytes that records where values are. It accepts what
/// `serde_json` accepts for a PRD (the text is parsed with it first) and nothing more is
/// asked of it.
struct Scan<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scan<'a> {
    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Result<(), String> {
        self.ws();
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected {:?} at byte {}", c as char, self.i))
        }
    }

    /// A string's decoded text; `i` after its closing quote.
    fn string(&mut self) -> Result<String, String> {
        self.ws();
        let start = self.i;
        self.eat(b'"')?;
        while self.i < self.b.len() {
            match self.b[self.i] {
                b'\\' => self.i += 2,
                b'"' => {
                    self.i += 1;
                    let raw = std::str::from_utf8(&self.b[start..self.i]).map_err(|e| e.to_string())?;
                    return serde_json::from_str::<String>(raw).map_err(|e| e.to_string());
                }
                _ => self.i += 1,
            }
        }
        Err("unterminated string".into())
    }

    /// Skips one value; its span.
    fn value(&mut self) -> Result<std::ops::Range<usize>, String> {
        self.ws();
        let start = self.i;
        match self.b.get(self.i) {
            Some(b'"') => {
                self.string()?;
            }
            Some(b'{') | Some(b'[') => {
                let (open, close) = if self.b[self.i] == b'{' {
                    (b'{', b'}')
                } else {
                    (b'[', b']')
                };
                let mut depth = 0usize;
                while self.i < self.b.len() {
                    match self.b[self.i] {
                        b'"' => {
                            self.string()?;
                            continue;
                        }
                        c if c == open => depth += 1,
                        c if c == close => {
                            depth -= 1;
                            if depth == 0 {
                                self.i += 1;
                                return Ok(start..self.i);
                            }
                        }
                        _ => {}
                    }
                    self.i += 1;
                }
                return Err("unterminated value".into());
            }
            Some(_) => {
                while self.i < self.b.len()
                    && !matches!(self.b[self.i], b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
                {
                    self.i += 1;
                }
            }
            None => return Err("unexpected end".into()),
        }
        Ok(start..self.i)
    }

    /// The members of the object at `i`: each key and its value's span; `i` after the `}`.
    fn members(&mut self) -> Result<Vec<(String, std::ops::Range<usize>)>, String> {
        self.eat(b'{')?;
        let mut out = Vec::new();
        self.ws();
        if self.b.get(self.i) == Some(&b'}') {
            self.i += 1;
            return Ok(out);
        }
        loop {
            let key = self.string()?;
            self.eat(b':')?;
            let v = self.value()?;
            out.push((key, v));
            self.ws();
            match self.b.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(out);
                }
                _ => return Err(format!("expected ',' or '}}' at byte {}", self.i)),
            }
        }
    }
}

fn spans(text: &str) -> Result<Spans, String> {
    Prd::parse(text.as_bytes())?;
    let mut top = Scan {
        b: text.as_bytes(),
        i: 0,
    };
    let members = top.members()?;
    let (_, array) = members
        .iter()
        .rev()
        .find(|(k, _)| k == "userStories")
        .ok_or("it has no \"userStories\" array")?;
    let mut sc = Scan {
        b: text.as_bytes(),
        i: array.start + 1,
    };
    let mut stories = Vec::new();
    loop {
        sc.ws();
        if sc.b.get(sc.i) == Some(&b']') {
            break;
        }
        let whole = sc.value()?;
        let mut obj = Scan {
            b: text.as_bytes(),
            i: whole.start,
        };
        let fields = obj.members()?;
        let value_of = |name: &str| fields.iter().rev().find(|(k, _)| k == name).map(|(_, r)| r.clone());
        let id_span = value_of("id").ok_or("a story has no id")?;
        let raw = &text[id_span.clone()];
        let id = match serde_json::from_str::<serde_json::Value>(raw).map_err(|e| e.to_string())? {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        };
        stories.push((id, whole, value_of("passes")));
        sc.ws();
        if sc.b.get(sc.i) == Some(&b',') {
            sc.i += 1;
        }
    }
    Ok(Spans {
        inside: array.start + 1..array.end - 1,
        stories,
    })
}

/// The PRD text with `passes` set to `true` for the stories `ids`; every other byte kept.
/// Unknown ids are ignored.
///
/// Errors: the text is not a valid PRD.
pub fn with_passes(text: &str, ids: &[String]) -> Result<String, String> {
    let sp = spans(text)?;
    let mut edits: Vec<std::ops::Range<usize>> = sp
        .stories
        .iter()
        .filter(|(id, _, _)| ids.contains(id))
        .filter_map(|(_, _, passes)| passes.clone())
        .filter(|r| &text[r.clone()] != "true")
        .collect();
    edits.sort_by_key(|r| std::cmp::Reverse(r.start));
    let mut out = text.to_owned();
    for r in edits {
        out.replace_range(r, "true");
    }
    Ok(out)
}

/// The PRD text with only the stories `keep` in its `userStories` (in file order); every
/// other byte of the file and of each kept story as it was.
///
/// Errors: the text is not a valid PRD; none of `keep` is in it.
pub fn scoped(text: &str, keep: &[String]) -> Result<String, String> {
    let sp = spans(text)?;
    let kept: Vec<&std::ops::Range<usize>> = sp
        .stories
        .iter()
        .filter(|(id, _, _)| keep.contains(id))
        .map(|(_, whole, _)| whole)
        .collect();
    if kept.is_empty() {
        return Err("none of the stories asked for is in the PRD".into());
    }
    let first = &sp.stories[0].1;
    let last = &sp.stories[sp.stories.len() - 1].1;
    let lead = &text[sp.inside.start..first.start];
    let tail = &text[last.end..sp.inside.end];
    let sep = match sp.stories.get(1) {
        Some((_, second, _)) => &text[first.end..second.start],
        None => ", ",
    };
    let body: Vec<&str> = kept.iter().map(|r| &text[(*r).clone()]).collect();
    Ok(format!(
        "{}{lead}{}{tail}{}",
        &text[..sp.inside.start],
        body.join(sep),
        &text[sp.inside.end..]
    ))
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

    const TEXT: &str = "{\n  \"title\": \"shop\",\n  \"userStories\": [\n    {\"passes\": false, \"id\": \"US-1\", \"title\": \"a \\\"quoted\\\" ]\"},\n    {\"id\": 2, \"title\": \"b\", \"passes\":false, \"notes\": {\"passes\": false}},\n    {\"id\": \"US-3\", \"title\": \"c\", \"passes\": true}\n  ],\n  \"zz\": 1\n}\n";

    #[test]
    fn passes_are_set_in_place_and_nothing_else_moves() {
        let out = with_passes(TEXT, &["2".into(), "US-3".into(), "nope".into()]).expect("edit");
        assert_eq!(
            out,
            TEXT.replacen("\"passes\":false, \"notes\"", "\"passes\":true, \"notes\"", 1)
        );
        let prd = Prd::parse(out.as_bytes()).expect("still a PRD");
        assert_eq!(prd.counts(), (2, 3));
        assert_eq!(with_passes(&out, &["2".into()]).expect("again"), out, "idempotent");
    }

    #[test]
    fn a_scoped_copy_keeps_only_the_claimed_stories_as_written() {
        let out = scoped(TEXT, &["US-1".into(), "US-3".into()]).expect("scope");
        let prd = Prd::parse(out.as_bytes()).expect("a PRD");
        let ids: Vec<&str> = prd.stories.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["US-1", "US-3"]);
        assert!(out
            .starts_with("{\n  \"title\": \"shop\",\n  \"userStories\": [\n    {\"passes\": false, \"id\": \"US-1\""));
        assert!(out.ends_with("\"passes\": true}\n  ],\n  \"zz\": 1\n}\n"), "{out}");
        assert!(scoped(TEXT, &["nope".into()]).is_err());
    }

    fn prd_of(stories: &[(&str, Option<i64>, &[&str])]) -> Prd {
        let items: Vec<String> = stories
            .iter()
            .map(|(id, pri, deps)| {
                let mut s = format!("{{\"id\":\"{id}\",\"title\":\"t\",\"passes\":false");
                if let Some(p) = pri {
                    s.push_str(&format!(",\"priority\":{p}"));
                }
                if !deps.is_empty() {
                    s.push_str(&format!(",\"dependsOn\":{:?}", deps));
                }
                s.push('}');
                s
            })
            .collect();
        Prd::parse(format!("{{\"userStories\":[{}]}}", items.join(",")).as_bytes()).expect("prd")
    }

    #[test]
    fn parallel_plans_split_in_order_keep_chains_and_skip_held_stories() {
        let six = prd_of(&[
            ("1", None, &[]),
            ("2", None, &[]),
            ("3", None, &[]),
            ("4", None, &[]),
            ("5", None, &[]),
            ("6", None, &[]),
        ]);
        assert_eq!(
            plan_parallel(&six, &[], 3),
            [vec!["1", "2"], vec!["3", "4"], vec!["5", "6"]]
        );
        assert_eq!(
            plan_parallel(&six, &["1".into(), "2".into(), "3".into(), "4".into()], 3),
            [vec!["5"], vec!["6"]]
        );
        assert_eq!(
            plan_parallel(&six, &[], 4),
            [vec!["1", "2"], vec!["3", "4"], vec!["5"], vec!["6"]]
        );
        let deps = prd_of(&[
            ("a", None, &[]),
            ("b", None, &["c"]),
            ("c", Some(1), &[]),
            ("d", None, &[]),
        ]);
        let order: Vec<&str> = deps.work_order().iter().map(|s| s.id.as_str()).collect();
        assert_eq!(
            order,
            ["c", "a", "b", "d"],
            "priority first, a dependency before its dependent"
        );
        assert_eq!(plan_parallel(&deps, &[], 2), [vec!["c", "b"], vec!["a", "d"]]);
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

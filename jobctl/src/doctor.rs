//! `jobctl doctor`: what works here, and why not.

use jobobject::Capabilities;
use serde_json::{Map, Value, json};

use crate::error::{CliResult, status};
use crate::output;
use crate::platform::{self, Global};

/// Tries every feature on a throwaway job in the place `--parent` chooses, and prints what
/// works; exits 1 when no job can be made at all.
pub fn doctor(global: &Global) -> CliResult<i32> {
    let options = platform::options(global, None)?;
    let found = Capabilities::probe(&options);
    let jobs = found.get("jobs").is_some_and(|f| f.available);
    if global.json {
        let facts: Map<String, Value> = found
            .facts
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let features: Vec<Value> = found
            .features
            .iter()
            .map(|f| json!({ "name": f.name, "available": f.available, "detail": f.detail }))
            .collect();
        output::json(&json!({ "facts": facts, "features": features }));
    } else {
        let facts: Vec<Vec<String>> = found
            .facts
            .iter()
            .map(|(k, v)| {
                vec![
                    output::escape(k).into_owned(),
                    output::escape(v).into_owned(),
                ]
            })
            .collect();
        output::print(&output::table(&["FACT", "VALUE"], &facts, &[]));
        output::print("\n");
        let rows: Vec<Vec<String>> = found
            .features
            .iter()
            .map(|f| {
                vec![
                    f.name.to_owned(),
                    if f.available { "yes" } else { "no" }.to_owned(),
                    output::escape(&f.detail).into_owned(),
                ]
            })
            .collect();
        output::print(&output::table(
            &["FEATURE", "WORKS", "HOW, OR WHY NOT"],
            &rows,
            &[],
        ));
    }
    Ok(if jobs { status::OK } else { status::FAILURE })
}

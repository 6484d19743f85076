//! One run's result: a JSON object on stdout (one line, for scripts) and a human summary
//! on stderr. Every run carries its workload, label, target, parameters, figures, the CPU
//! window of `procstat`, an `ok` verdict and the errors seen.

use serde_json::{json, Map, Value as Json};

use crate::procstat::CpuReport;
use crate::Ctx;

pub struct Run {
    pub workload: &'static str,
    pub params: Map<String, Json>,
    pub figures: Map<String, Json>,
    pub cpu: Option<CpuReport>,
    pub errors: Vec<String>,
    /// One line for the human summary.
    pub headline: String,
    /// Failure independent of `errors`: loss, nothing measured.
    pub failed: Option<String>,
}

impl Run {
    pub fn new(workload: &'static str) -> Run {
        Run { workload, params: Map::new(), figures: Map::new(), cpu: None, errors: Vec::new(), headline: String::new(), failed: None }
    }

    pub fn param(&mut self, k: &str, v: impl Into<Json>) {
        self.params.insert(k.to_owned(), v.into());
    }

    pub fn fig(&mut self, k: &str, v: impl Into<Json>) {
        self.figures.insert(k.to_owned(), v.into());
    }

    pub fn ok(&self) -> bool {
        self.failed.is_none() && self.errors.is_empty()
    }

    pub fn to_json(&self, ctx: &Ctx) -> Json {
        let mut o = Map::new();
        o.insert("workload".into(), json!(self.workload));
        o.insert("label".into(), json!(ctx.label));
        o.insert("target".into(), json!(ctx.target.describe()));
        o.insert("transport".into(), json!(ctx.target.transport()));
        o.insert("serializer".into(), json!(ctx.serializer.name()));
        o.insert("router_pid".into(), json!(ctx.router_pid));
        o.insert("params".into(), Json::Object(self.params.clone()));
        for (k, v) in &self.figures {
            o.insert(k.clone(), v.clone());
        }
        if let Some(cpu) = &self.cpu {
            for (k, v) in cpu.to_json() {
                o.insert(k, v);
            }
        }
        o.insert("ok".into(), json!(self.ok()));
        let mut errors = self.errors.clone();
        if let Some(cpu) = &self.cpu {
            errors.extend(cpu.router_error.clone());
        }
        errors.truncate(20);
        o.insert("errors".into(), json!(errors));
        Json::Object(o)
    }

    pub fn print(&self, ctx: &Ctx) {
        println!("{}", self.to_json(ctx));
        let params: Vec<String> = self.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        eprintln!(
            "[{}] {} {} ({} {}/{})",
            ctx.label,
            if self.ok() { "ok  " } else { "FAIL" },
            self.workload,
            params.join(" "),
            ctx.target.transport(),
            ctx.serializer.name()
        );
        if !self.headline.is_empty() {
            eprintln!("    {}", self.headline);
        }
        if let Some(cpu) = &self.cpu {
            eprintln!("    {}", cpu.human());
        }
        if let Some(f) = &self.failed {
            eprintln!("    failed: {f}");
        }
        for e in self.errors.iter().take(5) {
            eprintln!("    error: {e}");
        }
        if self.errors.len() > 5 {
            eprintln!("    … {} more errors", self.errors.len() - 5);
        }
    }
}

/// Rounds for the JSON figures.
pub fn round(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (x * f).round() / f
}

/// 1234567.8 → "1,234,568"
pub fn thousands(x: f64) -> String {
    let s = format!("{:.0}", x.max(0.0));
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

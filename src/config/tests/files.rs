//! Loading from disk: `realms_dir` resolution and ordering, and errors spread over
//! several files all being reported, each with its own file name.

use super::{err, temp_dir, write, OPEN_REALM};
use crate::config::{Config, ConfigErrors};

fn load_errors(main: &std::path::Path) -> Vec<crate::config::ConfigError> {
    match Config::load(main) {
        Ok(config) => panic!("expected errors, got {config:?}"),
        Err(ConfigErrors(errors)) => errors,
    }
}

#[test]
fn realms_dir_with_two_files_in_name_order() {
    let dir = temp_dir("two-files");
    let main = dir.join("switchyard.toml");
    write(
        &main,
        "realms_dir = \"realms\"\n[[realms]]\nname = \"inline\"\n",
    );
    // Written in reverse order: loading must sort by file name, not rely on readdir.
    write(
        &dir.join("realms/b.toml"),
        &OPEN_REALM.replace("\"realm1\"", "\"realm_b\""),
    );
    write(&dir.join("realms/a.toml"), "name = \"realm_a\"\n");
    write(&dir.join("realms/notes.txt"), "not a realm");
    std::fs::create_dir_all(dir.join("realms/folder.toml")).expect("create dir");

    let config = Config::load(&main).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = config.realms.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["inline", "realm_a", "realm_b"]);
    assert_eq!(config.source, Some(main));
    let realm_b = &config.realms[2];
    assert_eq!(realm_b.anonymous.as_deref(), Some("anonymous"));
    assert_eq!(realm_b.roles, Config::default().realms[0].roles);
    assert_eq!(config.realms[1].roles, vec![]);
}

#[test]
fn errors_from_every_file_are_reported() {
    let dir = temp_dir("errors-everywhere");
    let main = dir.join("switchyard.toml");
    write(&main, "realms_dir = \"realms\"\n[log]\nformat = \"xml\"\n");
    write(
        &dir.join("realms/a.toml"),
        "name = \"a\"\nanonymous = \"nobody\"\n",
    );
    write(&dir.join("realms/b.toml"), "name = \"b\"\nroles = [\n");
    write(&dir.join("realms/c.toml"), "name = \"c\"\nbogus = 1\n");
    assert_eq!(
        load_errors(&main),
        vec![
            err(
                &main,
                3,
                10,
                "unknown log format `xml`, expected `text` or `json`"
            ),
            err(
                dir.join("realms/a.toml"),
                2,
                13,
                "anonymous role `nobody` is not defined in realm `a`"
            ),
            err(
                dir.join("realms/b.toml"),
                3,
                1,
                "invalid array: expected `]`"
            ),
            err(
                dir.join("realms/c.toml"),
                2,
                1,
                "unknown key `bogus`, expected one of `name`, `anonymous`, `roles`, `principals`, `graph`, `replay`, `limits`"
            ),
        ]
    );
}

#[test]
fn duplicate_realm_across_files() {
    let dir = temp_dir("duplicate-across");
    let main = dir.join("switchyard.toml");
    write(
        &main,
        "realms_dir = \"realms\"\n[[realms]]\nname = \"realm1\"\n",
    );
    write(&dir.join("realms/a.toml"), "name = \"realm2\"\n");
    write(
        &dir.join("realms/b.toml"),
        "# realm file\nname = \"realm2\"\n",
    );
    write(&dir.join("realms/c.toml"), "name = \"realm1\"\n");
    let first_realm2 = format!("{}:1:8", dir.join("realms/a.toml").display());
    let first_realm1 = format!("{}:3:8", main.display());
    assert_eq!(
        load_errors(&main),
        vec![
            err(
                dir.join("realms/b.toml"),
                2,
                8,
                &format!("duplicate realm `realm2`, first defined at {first_realm2}")
            ),
            err(
                dir.join("realms/c.toml"),
                1,
                8,
                &format!("duplicate realm `realm1`, first defined at {first_realm1}")
            ),
        ]
    );
}

#[test]
fn only_a_broken_realm_file_does_not_also_say_no_realm() {
    let dir = temp_dir("broken-only");
    let main = dir.join("switchyard.toml");
    write(&main, "realms_dir = \"realms\"\n");
    write(&dir.join("realms/a.toml"), "name = \"a\"\nroles = 3\n");
    assert_eq!(
        load_errors(&main),
        vec![err(
            dir.join("realms/a.toml"),
            2,
            9,
            "invalid type: integer `3`, expected a sequence"
        )]
    );
}

#[test]
fn empty_realms_dir_means_no_realm() {
    let dir = temp_dir("empty-dir");
    let main = dir.join("switchyard.toml");
    write(&main, "# all in realms/\nrealms_dir = \"realms\"\n");
    std::fs::create_dir_all(dir.join("realms")).expect("create dir");
    assert_eq!(
        load_errors(&main),
        vec![err(
            &main,
            2,
            14,
            "no realm configured: realms_dir `realms` holds no *.toml file"
        )]
    );
}

#[test]
fn missing_realms_dir() {
    let dir = temp_dir("missing-dir");
    let main = dir.join("switchyard.toml");
    write(&main, "realms_dir = \"nowhere\"\n");
    let errs = load_errors(&main);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(
        (errs[0].file.as_path(), errs[0].line, errs[0].column),
        (main.as_path(), 1, 14)
    );
    let expected = format!(
        "cannot read realms_dir `{}`: ",
        dir.join("nowhere").display()
    );
    assert!(
        errs[0].message.starts_with(&expected),
        "{}",
        errs[0].message
    );
}

#[test]
fn empty_realms_dir_value() {
    let dir = temp_dir("empty-value");
    let main = dir.join("switchyard.toml");
    write(&main, "realms_dir = \"\"\n");
    assert_eq!(
        load_errors(&main),
        vec![err(&main, 1, 14, "`realms_dir` must not be empty")]
    );
}

#[test]
fn absolute_realms_dir() {
    let dir = temp_dir("absolute-dir");
    let realms = dir.join("elsewhere");
    write(&realms.join("r.toml"), "name = \"far\"\n");
    // The main file is "in" a folder that does not exist: an absolute realms_dir
    // must not depend on it.
    let text = format!("realms_dir = {:?}\n", realms.display().to_string());
    let config = Config::from_str(&text, &dir.join("missing/switchyard.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.realms.len(), 1);
    assert_eq!(config.realms[0].name, "far");
}

#[test]
fn a_graph_realm_loads_its_policy_file() {
    let dir = temp_dir("graph-policy");
    let main = dir.join("switchyard.toml");
    write(&main, "realms_dir = \"realms\"\n");
    write(
        &dir.join("realms/wb.toml"),
        "name = \"wb\"\n[graph]\npolicy = \"../policies/wb.toml\"\ncache_objects = 5\n[[roles]]\nname = \"controller\"\n",
    );
    write(
        &dir.join("policies/wb.toml"),
        "[[rules]]\nuri = \"containers.{object}.logs\"\nsubscribe = \"read\"\npublish = { level = \"write\", roles = [\"controller\"] }\n",
    );
    let config = Config::load(&main).unwrap_or_else(|e| panic!("{e}"));
    let graph = config.realms[0].graph.as_ref().expect("graph realm");
    assert_eq!((graph.migrate, graph.cache_principals, graph.cache_objects, graph.database_url.as_deref()), (false, 10_000, 5, None));
    assert_eq!(graph.policy.file, dir.join("realms/../policies/wb.toml"));
    use crate::config::{LevelName, PolicyRule, Requirement};
    assert_eq!(
        graph.policy.rules,
        vec![PolicyRule {
            template: vec![Some("containers".into()), None, Some("logs".into())],
            subscribe: Requirement { level: Some(LevelName::Read), roles: vec![] },
            publish: Requirement { level: Some(LevelName::Write), roles: vec!["controller".into()] },
            call: Requirement::default(),
            register: Requirement::default(),
        }]
    );
    assert_eq!(graph.policy.rules[0].uri(), "containers.{object}.logs");
}

#[test]
fn policy_errors_point_into_the_policy_file() {
    let dir = temp_dir("graph-policy-errors");
    let main = dir.join("switchyard.toml");
    write(&main, "realms_dir = \"realms\"\n");
    let realm = dir.join("realms/wb.toml");
    write(&realm, "name = \"wb\"\n[graph]\npolicy = \"../policies/wb.toml\"\ncache_principals = 0\n");
    let policy = dir.join("realms/../policies/wb.toml");
    write(
        &policy,
        "[[rules]]\nuri = \"a.{object}.{object}\"\n\
         [[rules]]\nuri = \"b.{object}\"\nsubscribe = \"reed\"\npublish = { roles = [\"ghost\"] }\n\
         [[rules]]\nuri = \"c.plain\"\nsubscribe = \"read\"\n\
         [[rules]]\nuri = \"b.{object}\"\n",
    );
    assert_eq!(
        load_errors(&main),
        vec![
            err(&realm, 4, 20, "must be at least 1"),
            err(&policy, 2, 7, "URI template `a.{object}.{object}` is not valid: dot-separated components, at most one of them `{object}`"),
            err(&policy, 4, 7, "publish: role `ghost` is not defined in the realm"),
            err(&policy, 4, 7, "subscribe: unknown level `reed`, expected `read`, `write` or `manage`"),
            err(&policy, 8, 7, "subscribe: a level needs an object, and this URI template has no `{object}`"),
            err(&policy, 11, 7, "duplicate rule for `b.{object}`"),
        ]
    );
}

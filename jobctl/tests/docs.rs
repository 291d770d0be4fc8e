//! The documentation jobctl carries: shell completions and the manual page.

#![cfg(target_os = "linux")]

mod common;

use common::run;

#[test]
fn completions_for_each_shell() {
    for (shell, marker) in [
        ("bash", "_jobctl()"),
        ("zsh", "#compdef jobctl"),
        ("fish", "complete -c jobctl"),
    ] {
        let out = run(&["completions", shell]);
        assert_eq!(out.code(), 0, "{shell}: {out:?}");
        assert!(out.stdout.contains(marker), "{shell}: {}", out.stdout);
        // Every subcommand is offered, the new ones too.
        for sub in ["run", "wait", "kill", "top"] {
            assert!(out.stdout.contains(sub), "{shell} lacks {sub}");
        }
    }
    let out = run(&["completions", "tcsh"]);
    assert_eq!(out.code(), 2, "{out:?}");
}

#[test]
fn the_manual_page_is_roff() {
    let out = run(&["man"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.contains(".TH jobctl 1"), "{}", out.stdout);
    assert!(out.stdout.contains("wait"), "{}", out.stdout);
}

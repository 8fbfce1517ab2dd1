"""docs/concepts.md "Resolution", rule by rule, without a database."""

from __future__ import annotations

import pytest

from orgenv.resolution import Definition, GroupLayer, group_reach, resolve


def layer(name: str, priority: int = 0, **values: str) -> GroupLayer:
    return GroupLayer(
        name,
        priority,
        [Definition(k, v, False, f"group:{name}", priority) for k, v in values.items()],
    )


def project(**values: str) -> list[Definition]:
    return [Definition(k, v, False, "project") for k, v in values.items()]


@pytest.mark.parametrize(
    ("groups", "project_vars", "expected", "sources"),
    [
        # one group: its variables, sourced to it
        ([layer("a", X="1")], {}, {"X": "1"}, {"X": "group:a"}),
        # a higher priority wins over a lower one, whatever the names
        ([layer("a", 5, X="a"), layer("b", 0, X="b")], {}, {"X": "a"}, {"X": "group:a"}),
        ([layer("a", 0, X="a"), layer("b", 5, X="b")], {}, {"X": "b"}, {"X": "group:b"}),
        # negative priorities sort below the default
        ([layer("a", -1, X="a"), layer("z", 0, X="z")], {}, {"X": "z"}, {"X": "group:z"}),
        # equal priority: the group whose name sorts first wins
        ([layer("beta", X="b"), layer("alpha", X="a")], {}, {"X": "a"}, {"X": "group:alpha"}),
        # the project overrides any group
        ([layer("a", 99, X="a")], {"X": "p"}, {"X": "p"}, {"X": "project"}),
        # distinct names all come through
        (
            [layer("a", X="1"), layer("b", Y="2")],
            {"Z": "3"},
            {"X": "1", "Y": "2", "Z": "3"},
            {"X": "group:a", "Y": "group:b", "Z": "project"},
        ),
        # names are case-sensitive
        (
            [layer("a", x="lower"), layer("b", X="upper")],
            {},
            {"x": "lower", "X": "upper"},
            {"x": "group:a", "X": "group:b"},
        ),
        # nothing at all
        ([], {}, {}, {}),
    ],
)
def test_precedence(groups, project_vars, expected, sources):
    result = resolve(groups, project(**project_vars))
    assert {n: r.value for n, r in result.variables.items()} == expected
    assert result.sources == sources


def test_an_equal_priority_clash_is_a_conflict_naming_winner_and_shadowed():
    result = resolve([layer("zeta", X="z"), layer("alpha", X="a"), layer("mid", X="m")], [])
    assert [c.as_dict() for c in result.conflicts] == [
        {"name": "X", "winner": "group:alpha", "shadowed": ["group:mid", "group:zeta"]}
    ]


def test_a_priority_difference_shadows_without_a_conflict():
    result = resolve([layer("a", 1, X="a"), layer("b", 0, X="b")], [])
    assert result.conflicts == []
    assert [d.source for d in result.variables["X"].shadowed] == ["group:b"]


def test_only_the_tied_groups_are_reported_in_a_conflict():
    result = resolve([layer("a", 1, X="a"), layer("b", 1, X="b"), layer("c", 0, X="c")], [])
    assert [c.as_dict() for c in result.conflicts] == [
        {"name": "X", "winner": "group:a", "shadowed": ["group:b"]}
    ]
    assert [d.source for d in result.variables["X"].shadowed] == ["group:b", "group:c"]


def test_a_project_override_records_every_group_definition_it_shadows():
    result = resolve([layer("a", 1, X="a"), layer("b", 0, X="b")], project(X="p"))
    assert [d.source for d in result.variables["X"].shadowed] == ["group:a", "group:b"]


def test_a_project_override_settles_a_conflict():
    result = resolve([layer("a", X="a"), layer("b", X="b")], project(X="p"))
    assert result.conflicts == []


def test_secrets_lists_the_secret_names_of_the_winners():
    secret = GroupLayer("s", 0, [Definition("TOKEN", "t", True, "group:s")])
    result = resolve([secret, layer("p", PLAIN="x")], project())
    assert result.secrets == ["TOKEN"]


def test_a_project_override_of_a_secret_takes_its_own_secret_flag():
    secret = GroupLayer("s", 0, [Definition("TOKEN", "t", True, "group:s")])
    result = resolve([secret], project(TOKEN="public"))
    assert result.secrets == []


@pytest.mark.parametrize(
    ("group_env", "access", "selected", "via_team", "project_env", "how"),
    [
        ("", "all", False, False, "", "all"),
        ("", "all", False, False, "production", "all"),
        ("", "selected", True, False, "staging", "selected"),
        ("", "selected", False, True, "staging", "team"),
        ("", "selected", True, True, "", "selected"),
        ("", "selected", False, False, "", None),
        # the environment guard: a labelled group reaches only projects with the same label
        ("production", "all", False, False, "production", "all"),
        ("production", "all", False, False, "staging", None),
        ("production", "all", False, False, "", None),
        ("production", "selected", False, True, "staging", None),
        ("production", "selected", False, True, "production", "team"),
    ],
)
def test_reach_and_the_environment_guard(group_env, access, selected, via_team, project_env, how):
    reach = group_reach(
        group_environment=group_env,
        access=access,
        selected=selected,
        via_team=via_team,
        project_environment=project_env,
    )
    assert reach.how == how
    assert reach.reaches is (how is not None)


def test_a_guarded_group_says_which_labels_kept_it_out():
    reach = group_reach(
        group_environment="production",
        access="all",
        selected=False,
        via_team=False,
        project_environment="staging",
    )
    assert "'production'" in reach.skipped_because and "'staging'" in reach.skipped_because

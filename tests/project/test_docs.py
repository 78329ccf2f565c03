"""The README documents what the code does: every feature, the two commands first."""
from pool_classifier.model.feature_spec import FEATURE_COLUMNS
from tests.conftest import PROJECT_ROOT

README = (PROJECT_ROOT / "README.md").read_text()


def test_every_feature_is_in_the_readme_table():
    missing = [name for name in FEATURE_COLUMNS if f"`{name}`" not in README]
    assert missing == []


def test_readme_starts_with_the_two_commands():
    head = README[: README.index("## The flow")]
    assert "make run" in head and "make test" in head


def test_the_readme_step_table_is_the_steps_declaration():
    """The README's step table is generated from `steps.STEPS`: a copy cannot drift."""
    from pool_classifier import steps

    start, end = "<!-- steps table:", "<!-- end of steps table -->"
    table = README[README.index(start):README.index(end)].split("\n", 1)[1]
    assert table == steps.markdown_table(), (
        "README.md's step table differs from the steps' declaration; paste this between its markers:\n"
        + steps.markdown_table())


def test_the_readme_hourly_step_table_is_the_hourly_steps_declaration():
    """The hourly DAG's table too (steps.HOURLY_STEPS)."""
    from pool_classifier import steps

    start, end = "<!-- hourly steps table:", "<!-- end of hourly steps table -->"
    table = README[README.index(start):README.index(end)].split("\n", 1)[1]
    assert table == steps.markdown_table(steps.HOURLY_STEPS), (
        "README.md's hourly step table differs from the declaration; paste this between its markers:\n"
        + steps.markdown_table(steps.HOURLY_STEPS))

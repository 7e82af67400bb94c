"""Links a person opens: the UI's own routes and the reports plugin's /reports/ pages."""

import pytest

from lifecycle import lake, ui


def test_a_report_in_the_lake_is_linked_under_the_uis_reports_pages(state, monkeypatch):
    monkeypatch.setenv("LIFECYCLE_UI_URL", "https://airflow.example.com/ml/")
    page = (
        lake.zone("reports") / "data_quality" / "transactions" / "2026-10-05" / "validations" / "__none__" / "a b.html"
    )
    expected = (
        "https://airflow.example.com/ml/reports/data_quality/transactions/2026-10-05/validations/__none__/a%20b.html"
    )
    assert ui.report_url(page) == ui.report_url(str(page)) == ui.report_url(f"file://{page.path}") == expected
    with pytest.raises(ValueError, match="is not in the reports zone"):
        ui.report_url(lake.zone("curated") / "x.html")
    assert ui.run_url("canary", "manual__2026-12-06T09:00:00+00:00", "approval") == (
        "https://airflow.example.com/ml/dags/canary/runs/manual__2026-12-06T09%3A00%3A00%2B00%3A00/tasks/approval"
    )
    assert ui.current_run() is None  # not in an Airflow task


def test_the_ui_address_is_checked(monkeypatch):
    from lifecycle import settings

    monkeypatch.setenv("LIFECYCLE_UI_URL", "airflow.example.com")
    with pytest.raises(settings.SettingError, match="LIFECYCLE_UI_URL='airflow.example.com': must be the Airflow UI"):
        settings.load()
    monkeypatch.delenv("LIFECYCLE_UI_URL")
    monkeypatch.setenv("LIFECYCLE_AIRFLOW_PORT", "18080")
    assert settings.load().ui_url == "http://localhost:18080"

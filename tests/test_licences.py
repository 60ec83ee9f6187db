"""The licence policy: every runtime dependency's licence is on the allow-list, THIRD_PARTY.md is
generated from the installed environment, and every page offers the running server's source
code (AGPL-3.0 s.13)."""

from __future__ import annotations

import dataclasses
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from sora_social.licences import (
    LICENCE_EXCEPTIONS,
    NOTICES,
    PYPROJECT,
    ROOT,
    Dependency,
    check,
    licence_problems,
    runtime_dependencies,
    runtime_requirements,
    update_notices,
)
from sora_social.source import build_source_archive

AGPL_TITLE = "                    GNU AFFERO GENERAL PUBLIC LICENSE\n"
BSD_4_CLAUSE_TEXT = """Copyright (c) 1990 The Regents.
Redistribution and use in source and binary forms are permitted provided that:
3. All advertising materials mentioning features or use of this software must display
   the following acknowledgement.
4. Neither the name of the University nor the names of its contributors may be used to
   endorse or promote products derived from this software.
"""


@pytest.fixture(scope="module")
def installed_dependencies() -> list[Dependency]:
    return runtime_dependencies()


def _install_fake_package(
    site: Path, name: str, metadata: list[str], licence_text: str | None = None
) -> None:
    """A distribution as pip would leave it in site-packages: METADATA, RECORD, licence file."""
    dist_info = site / f"{name.replace('-', '_')}-1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        "\n".join(["Metadata-Version: 2.4", f"Name: {name}", "Version: 1.0", *metadata]) + "\n"
    )
    files = ["METADATA", "RECORD"]
    if licence_text is not None:
        (dist_info / "licenses").mkdir()
        (dist_info / "licenses" / "LICENSE").write_text(licence_text)
        files.append("licenses/LICENSE")
    (dist_info / "RECORD").write_text("".join(f"{dist_info.name}/{file},,\n" for file in files))


def _project_also_requiring(tmp_path: Path, *names: str) -> Path:
    dependencies = [str(requirement) for requirement in runtime_requirements()] + list(names)
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(f'[project]\nname = "app"\ndependencies = {json.dumps(dependencies)}\n')
    return pyproject


def test_the_check_command_passes_on_the_installed_environment() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sora_social.licences", "check"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )

    assert result.stderr == ""
    assert result.returncode == 0
    assert result.stdout.startswith("licences: the ")


def test_the_committed_notices_are_the_ones_the_installed_environment_generates(
    installed_dependencies: list[Dependency], tmp_path: Path
) -> None:
    regenerated = tmp_path / "THIRD_PARTY.md"
    regenerated.write_text(update_notices(NOTICES.read_text(), installed_dependencies))

    assert regenerated.read_text() == NOTICES.read_text()


def test_the_notices_list_every_runtime_dependency_with_its_version_and_licence(
    installed_dependencies: list[Dependency],
) -> None:
    notices = NOTICES.read_text()

    for dependency in installed_dependencies:
        assert f"| {dependency.name} | {dependency.version} | {dependency.licence} |" in notices
    assert "| Django | 5.2.19 | BSD-3-Clause |" in notices
    assert "| espeakng-loader | 0.2.4 | GPL-3.0-or-later | exception |" in notices


def test_the_check_names_each_new_dependency_whose_licence_is_not_allowed(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    _install_fake_package(site, "sspl-thing", ["License-Expression: SSPL-1.0"])
    _install_fake_package(
        site, "gpl2-only-thing",
        ["Classifier: License :: OSI Approved :: GNU General Public License v2 (GPLv2)"],
    )
    _install_fake_package(
        site, "advertising-thing", ["License: BSD"], licence_text=BSD_4_CLAUSE_TEXT
    )
    _install_fake_package(site, "silent-thing", [])
    _install_fake_package(
        site, "mislabelled-thing",
        ["License: MIT", "Classifier: License :: OSI Approved :: MIT License"],
        licence_text=AGPL_TITLE + "                       Version 3, 19 November 2007\n",
    )
    # Dual licensed: one allowed side is enough.
    _install_fake_package(site, "dual-thing", ["License-Expression: SSPL-1.0 OR MIT"])
    pyproject = _project_also_requiring(
        tmp_path, "sspl-thing", "gpl2-only-thing", "advertising-thing", "silent-thing",
        "mislabelled-thing==1.0", "dual-thing",
    )

    problems = check(pyproject, NOTICES, extra_path=[site])

    not_allowed = "is not on ALLOWED_LICENCES, which lists those compatible with AGPL-3.0-or-later"
    read_files = "read its files and list it in LICENCE_EXCEPTIONS (sora_social/licences.py)"
    assert problems == [
        f"advertising-thing 1.0: licence BSD-4-Clause is not allowed (BSD-4-Clause {not_allowed})",
        f"gpl2-only-thing 1.0: licence GPL-2.0-only is not allowed (GPL-2.0-only {not_allowed})",
        "mislabelled-thing 1.0: its licence file is the GNU AGPL text, but its metadata declares "
        f"MIT; MIT License; {read_files} with its real licence",
        f"silent-thing 1.0: unknown licence (its metadata declares nothing); {read_files}",
        f"sspl-thing 1.0: licence SSPL-1.0 is not allowed (SSPL-1.0 {not_allowed})",
        "THIRD_PARTY.md is out of date: run `make notices` and commit it",
    ]


def test_an_exception_reviewed_for_another_version_fails_the_check(
    installed_dependencies: list[Dependency],
) -> None:
    exception = LICENCE_EXCEPTIONS[0]
    upgraded = [
        dataclasses.replace(dependency, version="99.0")
        if dependency.name == exception.package
        else dependency
        for dependency in installed_dependencies
    ]

    assert licence_problems(upgraded) == [
        f"{exception.package}: its licence exception was reviewed for version "
        f"{exception.version}, but 99.0 is installed; read the new version's licence files and "
        "update the exception"
    ]


def test_an_exception_for_a_package_no_longer_depended_on_fails_the_check(
    installed_dependencies: list[Dependency],
) -> None:
    exception = LICENCE_EXCEPTIONS[0]
    remaining = [
        dependency for dependency in installed_dependencies if dependency.name != exception.package
    ]

    assert licence_problems(remaining) == [
        f"{exception.package}: listed in LICENCE_EXCEPTIONS but not a runtime dependency; "
        "remove the exception"
    ]


def test_the_project_declares_its_own_licence() -> None:
    assert 'license = "AGPL-3.0-or-later"' in PYPROJECT.read_text()
    assert (ROOT / "LICENSE").read_text().lstrip().startswith("GNU AFFERO GENERAL PUBLIC LICENSE")


@pytest.mark.django_db
def test_the_server_offers_its_own_source_without_data_or_secrets(
    client: Client, settings: Any
) -> None:
    assert (settings.VAR_DIR / "secret_key").exists()

    response = client.get("/source.tar.gz", HTTP_ACCEPT="application/gzip")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/gzip"
    assert response["Content-Disposition"] == 'attachment; filename="sora-social-source.tar.gz"'
    with tarfile.open(fileobj=io.BytesIO(response.content), mode="r:gz") as archive:
        names = archive.getnames()
        licence = archive.extractfile("sora-social/LICENSE")
        assert licence is not None
        assert licence.read() == (ROOT / "LICENSE").read_bytes()
    assert {
        "sora-social/LICENSE",
        "sora-social/THIRD_PARTY.md",
        "sora-social/pyproject.toml",
        "sora-social/constraints.txt",
        "sora-social/sora_social/source.py",
        "sora-social/templates/base.html",
        "sora-social/docker/Dockerfile",
    } <= set(names)
    assert [
        name
        for name in names
        if name.startswith(("sora-social/var/", "sora-social/.venv/"))
        or name.endswith(("secret_key", ".pyc"))
        or "__pycache__" in name
    ] == []


def test_the_source_archive_is_the_same_bytes_for_the_same_files() -> None:
    assert build_source_archive(ROOT) == build_source_archive(ROOT)


@pytest.mark.django_db
def test_the_source_endpoint_is_in_the_openapi_schema(client: Client) -> None:
    response = client.get("/api/schema")

    assert response.status_code == 200
    schema = response.content.decode()
    assert "/source.tar.gz:" in schema
    assert "operationId: source_code" in schema
    assert "application/gzip:" in schema


@pytest.mark.django_db
def test_every_page_links_to_the_source_of_the_running_version(client: Client) -> None:
    response = client.get("/accounts/login/")

    assert response.status_code == 200
    assert (
        '<a href="/source.tar.gz" id="source-code-link">Source code (AGPL-3.0)</a>'
        in response.content.decode()
    )


@pytest.mark.django_db
def test_pages_link_to_the_published_source_when_one_is_configured(
    client: Client, settings: Any
) -> None:
    settings.SOURCE_CODE_URL = "https://git.example.org/sora-social/-/tree/v0.1.0"

    response = client.get("/accounts/login/")

    assert (
        '<a href="https://git.example.org/sora-social/-/tree/v0.1.0" id="source-code-link">'
        in response.content.decode()
    )

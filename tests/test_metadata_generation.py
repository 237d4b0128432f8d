"""What the generator publishes into the metadata graph, on SQLite and PostgreSQL: a dataset per table whose
schemaMetadata matches the table, its owner team, the product's Contains links; a regeneration writes new
versions only for the tables it changes, and an added column is one TECHNICAL_SCHEMA change on the timeline;
a refused generation publishes nothing."""

from __future__ import annotations

import copy
from typing import Any

from sqlalchemy import create_engine, inspect

from tests import test_metadata_support as support
from tests.test_metadata_support import KEY, PATIENT, VISIT, clinic_payload, dataset, generate, latest
from tests.test_products_support import Actor

graph = support.graph  # the fixture: patient and visit generated into data product clinic, owned by ROCKET
CLINICIAN = {"name": "clinician", "tableSchema": {"primaryKey": "id", "fields": [
    {"name": "id", "type": "integer"}, {"name": "name", "type": "string"}]}}


def schema_of(graph: Actor, table: str) -> dict[str, Any]:
    return latest(graph, dataset(table))[dataset(table)]["aspects"]["schemaMetadata"]


def test_each_table_becomes_a_dataset_matching_its_schema(graph: Actor) -> None:
    answer = graph.get("/generator").json()  # the generation being served
    assert "patient" in answer["tables"]
    patient = schema_of(graph, "patient")
    value = patient["value"]
    assert (patient["version"], value["__type"], value["schemaName"]) == (1, "SchemaMetadata", "patient")
    assert value["platform"] == "urn:li:dataPlatform:drg" and value["primaryKeys"] == ["id"]
    fields = {f["fieldPath"]: f for f in value["fields"]}
    assert list(fields) == ["id", "name", "ssn", "born"]
    assert [(f["type"]["type"]["__type"], f["nativeDataType"], f["isPartOfKey"], f["nullable"]) for f in
            fields.values()] == [("NumberType", "integer", True, False), ("StringType", "string", False, True),
                                 ("StringType", "string", False, True), ("DateType", "date", False, True)]
    assert fields["name"]["description"] == "Full name"
    assert (fields["ssn"]["protected"], fields["ssn"]["searchable"], fields["name"]["protected"]) == (True, True, False)
    assert KEY not in str(value) and "DRG_MD_TEST_KEY" not in str(value)  # never keys
    visit = schema_of(graph, "visit")["value"]
    assert visit["foreignKeys"] == [{
        "name": "fk_visit_patient_id", "foreignDataset": dataset("patient"),
        "sourceFields": [f"urn:li:schemaField:({dataset('visit')},patient_id)"],
        "foreignFields": [f"urn:li:schemaField:({dataset('patient')},id)"]}]
    owners = latest(graph, dataset("visit"))[dataset("visit")]["aspects"]["ownership"]["value"]["owners"]
    assert [o["owner"] for o in owners] == ["urn:li:corpGroup:ROCKET"]
    product = latest(graph, "urn:li:dataProduct:clinic")["urn:li:dataProduct:clinic"]["aspects"]
    assert [a["destinationUrn"] for a in product["dataProductProperties"]["value"]["assets"]] == [
        dataset("patient"), dataset("visit")]
    generated = schema_of(graph, "patient")
    assert generated["created"]["actor"] == "urn:li:corpuser:jessie"  # who generated it


def test_the_generation_answer_lists_the_dataset_urns(graph: Actor) -> None:
    again = graph.post("/generator", json=clinic_payload(PATIENT, VISIT, CLINICIAN))
    assert again.status_code == 201, again.text
    assert again.json()["datasets"] == [dataset("patient"), dataset("visit"), dataset("clinician")]


def test_a_regeneration_versions_only_the_tables_it_changes(graph: Actor, database_url: str) -> None:
    generate(graph, clinic_payload(PATIENT, VISIT, CLINICIAN))  # adds a table
    assert schema_of(graph, "clinician")["version"] == 1
    assert (schema_of(graph, "patient")["version"], schema_of(graph, "visit")["version"]) == (1, 1)
    patient = copy.deepcopy(PATIENT)  # a nullable column added to patient: schema evolution applies it
    patient["tableSchema"]["fields"].append({"name": "phone", "type": "string"})
    generate(graph, clinic_payload(patient, VISIT, CLINICIAN))
    engine = create_engine(database_url)
    try:
        assert "phone" in {c["name"] for c in inspect(engine).get_columns("patient")}  # the database has it
    finally:
        engine.dispose()
    assert (schema_of(graph, "patient")["version"], schema_of(graph, "visit")["version"]) == (2, 1)
    assert schema_of(graph, "clinician")["version"] == 1
    timeline = graph.get(f"/openapi/v2/timeline/v1/{dataset('patient')}", params={"categories": "TECHNICAL_SCHEMA"})
    assert timeline.status_code == 200, timeline.text
    *_, change = timeline.json()
    assert [(e["category"], e["operation"], e["modifier"]) for e in change["changeEvents"]] == [
        ("TECHNICAL_SCHEMA", "ADD", f"urn:li:schemaField:({dataset('patient')},phone)")]
    assert change["semVer"] == "0.1.0" and "phone" in change["changeEvents"][0]["description"]


def test_a_dropped_table_is_soft_deleted_and_leaves_its_product(graph: Actor) -> None:
    generate(graph, clinic_payload(PATIENT, VISIT, CLINICIAN))
    generate(graph, clinic_payload(PATIENT, VISIT))  # clinician left out (its table stays, unserved)
    assert latest(graph, dataset("clinician")) == {}
    status = latest(graph, dataset("clinician"), includeSoftDeleted="true")[dataset("clinician")]["aspects"]
    assert status["status"]["value"]["removed"] is True
    contains = graph.get("/openapi/relationships/v1/", params={"urn": "urn:li:dataProduct:clinic"}).json()
    assert [e["urn"] for e in contains["entities"]] == [dataset("patient"), dataset("visit")]


def test_a_refused_generation_publishes_nothing(graph: Actor) -> None:
    patient = copy.deepcopy(PATIENT)
    patient["tableSchema"]["fields"][3]["type"] = "integer"  # born: date -> integer, never applied by itself
    refused = graph.post("/generator", json=clinic_payload(patient, VISIT, CLINICIAN))
    assert refused.status_code == 409, refused.text
    assert latest(graph, dataset("clinician"), includeSoftDeleted="true") == {}
    assert schema_of(graph, "patient")["version"] == 1
    other = graph.post("/generator", as_="galactic", json=clinic_payload(PATIENT, VISIT, CLINICIAN))
    assert other.status_code == 403  # not the product's owner
    assert latest(graph, dataset("clinician"), includeSoftDeleted="true") == {}

"""Event analytics: Kinesis stream -> Firehose -> S3 (partitioned by event type and day) -> Glue -> Athena.

IoT rules put every canonical event on the stream; Firehose writes gzipped JSON lines under
``events/type=<type>/dt=<yyyy-mm-dd>/`` using the event's own ``type`` and ``received_at`` (dynamic
partitioning, so late deliveries land in the right day). Each Glue table uses partition projection, so new
days are queryable without crawlers or MSCK REPAIR.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from aws_cdk import CfnElement, CfnOutput, Duration, Size, Stack
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kinesisfirehose as firehose
from constructs import Construct

from infra.common import REPO_ROOT, acknowledge, private_bucket
from infra.config import DeployConfig
from infra.glue_schema import EventTable, event_tables

QUERY_DIR = REPO_ROOT / "analytics" / "queries"
EVENTS_PREFIX = "events/"
# jq 1.6 expressions Firehose evaluates per record to choose its S3 prefix.
PARTITION_KEYS = {"type": ".type", "dt": ".received_at[0:10]"}
JSON_SERDE = "org.openx.data.jsonserde.JsonSerDe"


class AnalyticsStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: DeployConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        access_logs = private_bucket(self, "AccessLogs", access_logs=None, expire_after=Duration.days(90))
        self.events_bucket = private_bucket(self, "EventLake", access_logs=access_logs)
        results = private_bucket(self, "QueryResults", access_logs=access_logs,
                                 expire_after=Duration.days(30))

        self.stream = kinesis.Stream(
            self, "EventStream",
            encryption=kinesis.StreamEncryption.MANAGED,
            stream_mode=(kinesis.StreamMode.PROVISIONED if config.kinesis_shards
                         else kinesis.StreamMode.ON_DEMAND),
            shard_count=config.kinesis_shards or None,
            retention_period=Duration.hours(24),
        )
        delivery = firehose.DeliveryStream(
            self, "ToS3",
            source=firehose.KinesisStreamSource(self.stream),
            destination=firehose.S3Bucket(
                self.events_bucket,
                dynamic_partitioning=firehose.DynamicPartitioningProps(enabled=True),
                processors=[firehose.MetadataExtractionProcessor.jq16(PARTITION_KEYS),
                            firehose.AppendDelimiterToRecordProcessor()],
                data_output_prefix=EVENTS_PREFIX + "type=!{partitionKeyFromQuery:type}/"
                                                   "dt=!{partitionKeyFromQuery:dt}/",
                error_output_prefix="errors/!{firehose:error-output-type}/dt=!{timestamp:yyyy-MM-dd}/",
                buffering_interval=Duration.seconds(config.firehose_buffer_s),
                buffering_size=Size.mebibytes(64),  # the minimum with dynamic partitioning
                compression=firehose.Compression.GZIP,
            ),
        )
        lake_id = self.resolve(self.get_logical_id(cast(CfnElement, self.events_bucket.node.default_child)))
        for finding in ("Action::s3:Abort*", "Action::s3:DeleteObject*", "Action::s3:GetBucket*",
                        "Action::s3:GetObject*", "Action::s3:List*", f"Resource::<{lake_id}.Arn>/*"):
            acknowledge(delivery, f"AwsSolutions-IAM5[{finding}]",
                        "CDK's grant for the Firehose S3 destination: objects of the event lake bucket only "
                        "(multipart upload, retries and partition prefixes need the object wildcard).")
        acknowledge(self, "CloudFormation-Validate::W7001",
                    "CDK's Firehose module always adds its regional CIDR mapping; only Redshift/Splunk "
                    "destinations reference it.")
        acknowledge(delivery, "AwsSolutions-KDF1",
                    "Firehose cannot encrypt a delivery stream whose source is a Kinesis stream; the source "
                    "stream is KMS-encrypted and the bucket SSE-S3, so data is encrypted at rest throughout.")

        self.database_name = f"{config.prefix.lower()}_events"
        database = glue.CfnDatabase(self, "Database", catalog_id=self.account,
                                    database_input=glue.CfnDatabase.DatabaseInputProperty(
                                        name=self.database_name,
                                        description="Canonical OCPP adapter events (docs/events)"))
        for table in event_tables():
            self._table(table).node.add_dependency(database)

        workgroup = athena.CfnWorkGroup(
            self, "Workgroup",
            name=f"{config.prefix.lower()}-analytics",
            recursive_delete_option=True,
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=10 * 1024**3,  # a runaway query costs at most ~5 cents
                engine_version=athena.CfnWorkGroup.EngineVersionProperty(
                    selected_engine_version="Athena engine version 3"),
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=results.s3_url_for_object("athena/"),
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_S3")),
            ),
        )
        CfnOutput(self, "AthenaWorkgroup", value=workgroup.ref, description="Run the named queries here")
        CfnOutput(self, "EventLakeBucket", value=self.events_bucket.bucket_name)
        for path in sorted(QUERY_DIR.glob("*.sql")):
            query = athena.CfnNamedQuery(
                self, "Query-" + path.stem,
                name=path.stem,
                description=query_description(path),
                database=self.database_name,
                query_string=path.read_text(),
                work_group=workgroup.ref,
            )
            query.node.add_dependency(database)

    def _table(self, table: EventTable) -> glue.CfnTable:
        location = self.events_bucket.s3_url_for_object(f"{EVENTS_PREFIX}type={table.name}/")
        return glue.CfnTable(
            self, "Table-" + table.name,
            catalog_id=self.account,
            database_name=self.database_name,
            table_input=glue.CfnTable.TableInputProperty(
                name=table.name,
                description=f"{table.name} events (docs/events/{table.name}.schema.json)",
                table_type="EXTERNAL_TABLE",
                parameters={
                    "classification": "json",
                    "compressionType": "gzip",
                    "projection.enabled": "true",
                    "projection.dt.type": "date",
                    "projection.dt.format": "yyyy-MM-dd",
                    "projection.dt.range": "2024-01-01,NOW",
                    "projection.dt.interval": "1",
                    "projection.dt.interval.unit": "DAYS",
                    "storage.location.template": location + "dt=${dt}/",
                },
                partition_keys=[glue.CfnTable.ColumnProperty(name="dt", type="string")],
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    columns=[glue.CfnTable.ColumnProperty(name=name, type=hive_type)
                             for name, hive_type in table.columns],
                    location=location,
                    input_format="org.apache.hadoop.mapred.TextInputFormat",
                    output_format="org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
                    serde_info=glue.CfnTable.SerdeInfoProperty(
                        serialization_library=JSON_SERDE,
                        # A malformed line must not fail every query over its day.
                        parameters={"ignore.malformed.json": "true"}),
                ),
            ),
        )


def query_description(path: Path) -> str:
    """The first ``--`` comment line of a query file."""
    for line in path.read_text().splitlines():
        if line.startswith("--"):
            return line.lstrip("- ").strip()
    return path.stem

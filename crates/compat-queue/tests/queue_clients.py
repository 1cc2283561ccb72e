#!/usr/bin/env python3
"""Drives the queue API the way the original broker's Python clients do
(requests, one thread per producer and consumer) and checks that every
consumer received every message of its topics once, all consumers of a
topic in one common order, each producer's messages in the order sent.

Usage: queue_clients.py BASE_URL   (exit 0: passed; 1: failed, with why)
Run by tests/python_clients.rs against a broker it starts.
"""

import sys
import threading
import time

import requests

TOPICS = ["orders", "events"]
PRODUCERS = 2
CONSUMERS = 2
MESSAGES_PER_PRODUCER_AND_TOPIC = 25
DEADLINE_S = 90
REQUEST_TIMEOUT_S = 30


class Failed(Exception):
    pass


def call(method, base, path, **kwargs):
    """One request; returns (status, body) and insists on a JSON body."""
    response = requests.request(method, base + path, timeout=REQUEST_TIMEOUT_S, **kwargs)
    if response.headers.get("Access-Control-Allow-Origin") != "*":
        raise Failed(f"{method} {path}: no CORS header")
    return response.status_code, response.json()


def expect(status, body, want_status, want_message=None):
    if status != want_status or (want_message is not None and body.get("message") != want_message):
        raise Failed(f"expected {want_status} {want_message!r}, got {status} {body!r}")


def register(base, kind, topic):
    status, body = call("POST", base, f"/{kind}/register", json={"topic": topic})
    expect(status, body, 200)
    ident = body[f"{kind}_id"]
    if not isinstance(ident, int):
        raise Failed(f"{kind} id {ident!r} is not an integer")
    return ident


def produce(base, producer_ids, index, errors):
    try:
        for seq in range(MESSAGES_PER_PRODUCER_AND_TOPIC):
            for topic in TOPICS:
                message = {"producer": index, "topic": topic, "seq": seq}
                # Producer ids are sent as strings half the time, as some clients do.
                pid = producer_ids[topic] if seq % 2 else str(producer_ids[topic])
                body = {"topic": topic, "producer_id": pid, "message": message}
                status, answer = call("POST", base, "/producer/produce", json=body)
                expect(status, answer, 200)
    except Exception as error:  # noqa: BLE001 - reported by the main thread
        errors.append(f"producer {index}: {error!r}")


def consume(base, consumer_ids, received, errors):
    expected = PRODUCERS * MESSAGES_PER_PRODUCER_AND_TOPIC
    deadline = time.monotonic() + DEADLINE_S
    try:
        for topic in TOPICS:
            cid = consumer_ids[topic]
            got = received[topic]
            while len(got) < expected:
                if time.monotonic() > deadline:
                    raise Failed(f"{topic}: only {len(got)} of {expected} messages in time")
                status, body = call("GET", base, "/size", params={"topic": topic, "consumer_id": cid})
                expect(status, body, 200)
                backlog = body["size"]
                if not isinstance(backlog, int) or backlog < 0:
                    raise Failed(f"size {backlog!r} is not a count")
                if backlog == 0:
                    time.sleep(0.01)
                    continue
                for _ in range(backlog):
                    # A backlog /size reported is never "Empty logs".
                    status, body = call("GET", base, "/consumer/consume",
                                        params={"topic": topic, "consumer_id": cid})
                    expect(status, body, 200)
                    got.append(body["message"])
    except Exception as error:  # noqa: BLE001 - reported by the main thread
        errors.append(f"consumer {consumer_ids}: {error!r}")


def check_refusals(base, consumer_id):
    status, body = call("GET", base, "/consumer/consume", params={"topic": "orders", "consumer_id": 999999})
    expect(status, body, 400, "Consumer:999999 does not exist")
    status, body = call("GET", base, "/size", params={"topic": "nope", "consumer_id": consumer_id})
    expect(status, body, 400, "Topic:nope does not exist")
    status, body = call("POST", base, "/topics", json={"topic_name": "orders"})
    expect(status, body, 400, "Topic:orders already exist")
    status, body = call("POST", base, "/producer/produce", data="not json")
    expect(status, body, 500, "Internal server Error: check params")


def check(received_by_consumer):
    per_topic = PRODUCERS * MESSAGES_PER_PRODUCER_AND_TOPIC
    for topic in TOPICS:
        orders = [received[topic] for received in received_by_consumer]
        first = orders[0]
        if len(first) != per_topic:
            raise Failed(f"{topic}: {len(first)} messages, expected {per_topic}")
        keys = [(m["producer"], m["seq"]) for m in first]
        if len(set(keys)) != per_topic or any(m["topic"] != topic for m in first):
            raise Failed(f"{topic}: duplicated or foreign messages: {keys}")
        for other in orders[1:]:
            if other != first:
                raise Failed(f"{topic}: consumers saw different orders")
        for producer in range(PRODUCERS):
            seqs = [seq for (p, seq) in keys if p == producer]
            if seqs != sorted(seqs):
                raise Failed(f"{topic}: producer {producer} out of order: {seqs}")


def main():
    base = sys.argv[1].rstrip("/")
    for topic in TOPICS:
        status, body = call("POST", base, "/topics", json={"topic_name": topic})
        expect(status, body, 200, f"Topic:{topic} created successfully")
    status, body = call("GET", base, "/topics")
    expect(status, body, 200)
    if body["message"][: len(TOPICS)] != TOPICS:
        raise Failed(f"topics listed as {body['message']!r}")

    consumers = [{t: register(base, "consumer", t) for t in TOPICS} for _ in range(CONSUMERS)]
    producers = [{t: register(base, "producer", t) for t in TOPICS} for _ in range(PRODUCERS)]
    check_refusals(base, consumers[0]["orders"])

    errors = []
    received = [{t: [] for t in TOPICS} for _ in range(CONSUMERS)]
    threads = [threading.Thread(target=consume, args=(base, ids, received[i], errors))
               for i, ids in enumerate(consumers)]
    threads += [threading.Thread(target=produce, args=(base, ids, i, errors))
                for i, ids in enumerate(producers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise Failed("; ".join(errors))
    check(received)
    total = sum(len(r[t]) for r in received for t in TOPICS)
    print(f"queue_clients: {CONSUMERS} consumers received {total} messages, in one order per topic")


if __name__ == "__main__":
    try:
        main()
    except Failed as failure:
        print(f"queue_clients: FAILED: {failure}", file=sys.stderr)
        sys.exit(1)

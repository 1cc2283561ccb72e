"""Paho MQTT clients for the cli tests' mqtt.rs: one scenario per run.

Usage: paho_roundtrip.py HOST PORT SCENARIO [HTTP_PORT], SCENARIO one of
  v5-properties  a v5 subscriber with subscription identifier 7 on
                 city/+/air/#; a v5 publisher sends QoS 1 and QoS 2 messages
                 with user properties and a content type
  v311-qos1      a 3.1.1 subscriber on city/#; a 3.1.1 publisher sends QoS 1
  v5-topic-alias a v5 publisher sets topic alias 1, then publishes by alias
                 alone (empty topic name)
  v5-websocket   a v5 subscriber over WebSocket (HTTP_PORT, path /mqtt) and a
                 3.1.1 publisher over TCP; then the reverse direction

Every subscriber is subscribed (SUBACK seen) before anything is published.
Prints one JSON object: the publisher's CONNACK or the subscriber's SUBACK
and every message the subscriber received, with its properties; the Rust
test asserts on it. This script only drives the clients and bounds every wait; it exits
non-zero, saying why on stderr, if a client cannot connect or a wait runs out.
"""

import json
import queue
import sys
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

# Upper bound on any one wait (connect, SUBACK, acknowledgement, delivery).
WAIT_SECONDS = 10


def fail(why):
    print(why, file=sys.stderr)
    sys.exit(1)


class Client:
    """A paho client on its own network thread, connected before use."""

    def __init__(self, host, port, client_id, protocol, websocket=False):
        self.protocol = protocol
        self.paho = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=protocol,
            transport="websockets" if websocket else "tcp",
        )
        if websocket:
            self.paho.ws_set_options(path="/mqtt")
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.connack = {}
        self.suback = []
        self.messages = queue.Queue()
        self.paho.on_connect = self._on_connect
        self.paho.on_subscribe = self._on_subscribe
        self.paho.on_message = self._on_message
        self.paho.connect(host, port, keepalive=30)
        self.paho.loop_start()
        if not self.connected.wait(WAIT_SECONDS):
            fail(f"{client_id}: no CONNACK within {WAIT_SECONDS} s")

    def _on_connect(self, _client, _userdata, _flags, reason_code, properties):
        self.connack = {
            "reason_code": reason_code.value,
            "properties": properties.json() if properties is not None else {},
        }
        self.connected.set()

    def _on_subscribe(self, _client, _userdata, _mid, reason_codes, _properties):
        self.suback = [code.value for code in reason_codes]
        self.subscribed.set()

    def _on_message(self, _client, _userdata, message):
        properties = message.properties
        self.messages.put(
            {
                "topic": message.topic,
                "payload": message.payload.decode(),
                "qos": message.qos,
                "properties": properties.json() if properties is not None else {},
            }
        )

    def subscribe(self, topic_filter, qos, subscription_identifier=None):
        properties = None
        if subscription_identifier is not None:
            properties = Properties(PacketTypes.SUBSCRIBE)
            properties.SubscriptionIdentifier = subscription_identifier
        if self.protocol == mqtt.MQTTv5:
            options = SubscribeOptions(qos=qos)
            self.paho.subscribe(topic_filter, options=options, properties=properties)
        else:
            self.paho.subscribe(topic_filter, qos=qos)
        if not self.subscribed.wait(WAIT_SECONDS):
            fail(f"no SUBACK for {topic_filter} within {WAIT_SECONDS} s")

    def publish(self, topic, payload, qos, **properties):
        """Publishes and, for QoS > 0, waits for the broker's acknowledgement."""
        publish_properties = None
        if properties:
            publish_properties = Properties(PacketTypes.PUBLISH)
            for name, value in properties.items():
                setattr(publish_properties, name, value)
        info = self.paho.publish(topic, payload, qos=qos, properties=publish_properties)
        info.wait_for_publish(WAIT_SECONDS)
        if not info.is_published():
            fail(f"{payload!r} to {topic!r}: not acknowledged within {WAIT_SECONDS} s")

    def received(self, count):
        try:
            return [self.messages.get(timeout=WAIT_SECONDS) for _ in range(count)]
        except queue.Empty:
            fail(f"fewer than {count} messages within {WAIT_SECONDS} s")

    def close(self):
        self.paho.disconnect()
        self.paho.loop_stop()


def v5_properties(host, port, _http_port=None):
    subscriber = Client(host, port, "paho-sub-v5", mqtt.MQTTv5)
    subscriber.subscribe("city/+/air/#", qos=2, subscription_identifier=7)
    publisher = Client(host, port, "paho-pub-v5", mqtt.MQTTv5)
    # Out of alphabetical order and with a repeated name: both must survive.
    user_properties = [("zone", "north"), ("sensor", "7"), ("zone", "south")]
    for qos in (1, 2):
        publisher.publish(
            f"city/north/air/{qos}",
            f"pm25 at qos {qos}",
            qos,
            UserProperty=user_properties,
            ContentType="text/plain",
        )
    received = subscriber.received(2)
    publisher.close()
    subscriber.close()
    return {"suback": subscriber.suback, "received": received}


def v311_qos1(host, port, _http_port=None):
    subscriber = Client(host, port, "paho-sub-v311", mqtt.MQTTv311)
    subscriber.subscribe("city/#", qos=1)
    publisher = Client(host, port, "paho-pub-v311", mqtt.MQTTv311)
    publisher.publish("city/west/air/2", "pm25=11", 1)
    received = subscriber.received(1)
    publisher.close()
    subscriber.close()
    return {"suback": subscriber.suback, "received": received}


def v5_topic_alias(host, port, _http_port=None):
    subscriber = Client(host, port, "paho-sub-alias", mqtt.MQTTv5)
    subscriber.subscribe("city/+/air/#", qos=1)
    publisher = Client(host, port, "paho-pub-alias", mqtt.MQTTv5)
    publisher.publish("city/alias/air/1", "first", 1, TopicAlias=1)
    publisher.publish("", "second", 1, TopicAlias=1)
    received = subscriber.received(2)
    publisher.close()
    subscriber.close()
    return {"connack": publisher.connack, "received": received}


def v5_websocket(host, port, http_port):
    subscriber = Client(host, http_port, "paho-ws-sub", mqtt.MQTTv5, websocket=True)
    subscriber.subscribe("city/+/air/#", qos=1)
    publisher = Client(host, port, "paho-tcp-pub", mqtt.MQTTv311)
    publisher.publish("city/ws/air/1", "to the browser", 1)
    to_websocket = subscriber.received(1)
    tcp_subscriber = Client(host, port, "paho-tcp-sub", mqtt.MQTTv311)
    tcp_subscriber.subscribe("city/+/air/#", qos=1)
    subscriber.publish("city/ws/air/2", "from the browser", 1)
    from_websocket = tcp_subscriber.received(1)
    for client in (publisher, subscriber, tcp_subscriber):
        client.close()
    return {"to_websocket": to_websocket, "from_websocket": from_websocket}


SCENARIOS = {
    "v5-properties": v5_properties,
    "v311-qos1": v311_qos1,
    "v5-topic-alias": v5_topic_alias,
    "v5-websocket": v5_websocket,
}


def main():
    if len(sys.argv) not in (4, 5) or sys.argv[3] not in SCENARIOS:
        fail(f"usage: {sys.argv[0]} HOST PORT {{{'|'.join(SCENARIOS)}}} [HTTP_PORT]")
    host, port, scenario = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    extra = [int(sys.argv[4])] if len(sys.argv) == 5 else []
    print(json.dumps(SCENARIOS[scenario](host, port, *extra)))


if __name__ == "__main__":
    main()

from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExpectedVersion(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXPECTED_VERSION_NO_STREAM: _ClassVar[ExpectedVersion]
    EXPECTED_VERSION_ANY: _ClassVar[ExpectedVersion]
    EXPECTED_VERSION_STREAM_EXISTS: _ClassVar[ExpectedVersion]

class ReadDirection(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    READ_DIRECTION_FORWARDS: _ClassVar[ReadDirection]
    READ_DIRECTION_BACKWARDS: _ClassVar[ReadDirection]

class StartPosition(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    START_POSITION_BEGINNING: _ClassVar[StartPosition]
    START_POSITION_END: _ClassVar[StartPosition]
    START_POSITION_CURSOR: _ClassVar[StartPosition]

class NackAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NACK_ACTION_RETRY: _ClassVar[NackAction]
    NACK_ACTION_PARK: _ClassVar[NackAction]
    NACK_ACTION_SKIP: _ClassVar[NackAction]
EXPECTED_VERSION_NO_STREAM: ExpectedVersion
EXPECTED_VERSION_ANY: ExpectedVersion
EXPECTED_VERSION_STREAM_EXISTS: ExpectedVersion
READ_DIRECTION_FORWARDS: ReadDirection
READ_DIRECTION_BACKWARDS: ReadDirection
START_POSITION_BEGINNING: StartPosition
START_POSITION_END: StartPosition
START_POSITION_CURSOR: StartPosition
NACK_ACTION_RETRY: NackAction
NACK_ACTION_PARK: NackAction
NACK_ACTION_SKIP: NackAction

class Event(_message.Message):
    __slots__ = ("event_id", "aggregate_id", "event_type", "aggregate_version", "data", "metadata", "created_at", "partition", "offset")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    AGGREGATE_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    AGGREGATE_VERSION_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    aggregate_id: str
    event_type: str
    aggregate_version: int
    data: bytes
    metadata: str
    created_at: int
    partition: int
    offset: int
    def __init__(self, event_id: _Optional[str] = ..., aggregate_id: _Optional[str] = ..., event_type: _Optional[str] = ..., aggregate_version: _Optional[int] = ..., data: _Optional[bytes] = ..., metadata: _Optional[str] = ..., created_at: _Optional[int] = ..., partition: _Optional[int] = ..., offset: _Optional[int] = ...) -> None: ...

class AppendRequest(_message.Message):
    __slots__ = ("stream_name", "expected_version", "events")
    STREAM_NAME_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    stream_name: str
    expected_version: int
    events: _containers.RepeatedCompositeFieldContainer[Event]
    def __init__(self, stream_name: _Optional[str] = ..., expected_version: _Optional[int] = ..., events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ...) -> None: ...

class AppendResponse(_message.Message):
    __slots__ = ("success", "current_version", "partition", "offset")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    CURRENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    success: bool
    current_version: int
    partition: int
    offset: int
    def __init__(self, success: _Optional[bool] = ..., current_version: _Optional[int] = ..., partition: _Optional[int] = ..., offset: _Optional[int] = ...) -> None: ...

class SubscribeRequest(_message.Message):
    __slots__ = ("from_sequence_id", "group")
    FROM_SEQUENCE_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    from_sequence_id: int
    group: str
    def __init__(self, from_sequence_id: _Optional[int] = ..., group: _Optional[str] = ...) -> None: ...

class Position(_message.Message):
    __slots__ = ("partition", "offset", "replayed")
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    partition: int
    offset: int
    replayed: bool
    def __init__(self, partition: _Optional[int] = ..., offset: _Optional[int] = ..., replayed: _Optional[bool] = ...) -> None: ...

class ReadStreamRequest(_message.Message):
    __slots__ = ("stream_name", "from_version", "max_count", "direction")
    STREAM_NAME_FIELD_NUMBER: _ClassVar[int]
    FROM_VERSION_FIELD_NUMBER: _ClassVar[int]
    MAX_COUNT_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    stream_name: str
    from_version: int
    max_count: int
    direction: ReadDirection
    def __init__(self, stream_name: _Optional[str] = ..., from_version: _Optional[int] = ..., max_count: _Optional[int] = ..., direction: _Optional[_Union[ReadDirection, str]] = ...) -> None: ...

class GetStreamRequest(_message.Message):
    __slots__ = ("stream_name",)
    STREAM_NAME_FIELD_NUMBER: _ClassVar[int]
    stream_name: str
    def __init__(self, stream_name: _Optional[str] = ...) -> None: ...

class StreamInfo(_message.Message):
    __slots__ = ("stream_name", "current_version", "partition", "first", "last")
    STREAM_NAME_FIELD_NUMBER: _ClassVar[int]
    CURRENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    FIRST_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    stream_name: str
    current_version: int
    partition: int
    first: Position
    last: Position
    def __init__(self, stream_name: _Optional[str] = ..., current_version: _Optional[int] = ..., partition: _Optional[int] = ..., first: _Optional[_Union[Position, _Mapping]] = ..., last: _Optional[_Union[Position, _Mapping]] = ...) -> None: ...

class SubscribeClientMessage(_message.Message):
    __slots__ = ("open", "ack", "nack")
    OPEN_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    NACK_FIELD_NUMBER: _ClassVar[int]
    open: SubscribeOpen
    ack: Ack
    nack: Nack
    def __init__(self, open: _Optional[_Union[SubscribeOpen, _Mapping]] = ..., ack: _Optional[_Union[Ack, _Mapping]] = ..., nack: _Optional[_Union[Nack, _Mapping]] = ...) -> None: ...

class SubscribeOpen(_message.Message):
    __slots__ = ("group", "max_in_flight", "event_types", "stream_prefix", "start", "cursor")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    MAX_IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPES_FIELD_NUMBER: _ClassVar[int]
    STREAM_PREFIX_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    group: str
    max_in_flight: int
    event_types: _containers.RepeatedScalarFieldContainer[str]
    stream_prefix: str
    start: StartPosition
    cursor: _containers.RepeatedCompositeFieldContainer[Position]
    def __init__(self, group: _Optional[str] = ..., max_in_flight: _Optional[int] = ..., event_types: _Optional[_Iterable[str]] = ..., stream_prefix: _Optional[str] = ..., start: _Optional[_Union[StartPosition, str]] = ..., cursor: _Optional[_Iterable[_Union[Position, _Mapping]]] = ...) -> None: ...

class Ack(_message.Message):
    __slots__ = ("positions",)
    POSITIONS_FIELD_NUMBER: _ClassVar[int]
    positions: _containers.RepeatedCompositeFieldContainer[Position]
    def __init__(self, positions: _Optional[_Iterable[_Union[Position, _Mapping]]] = ...) -> None: ...

class Nack(_message.Message):
    __slots__ = ("position", "action", "reason")
    POSITION_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    position: Position
    action: NackAction
    reason: str
    def __init__(self, position: _Optional[_Union[Position, _Mapping]] = ..., action: _Optional[_Union[NackAction, str]] = ..., reason: _Optional[str] = ...) -> None: ...

class SubscribeServerMessage(_message.Message):
    __slots__ = ("delivery", "caught_up")
    DELIVERY_FIELD_NUMBER: _ClassVar[int]
    CAUGHT_UP_FIELD_NUMBER: _ClassVar[int]
    delivery: Delivery
    caught_up: CaughtUp
    def __init__(self, delivery: _Optional[_Union[Delivery, _Mapping]] = ..., caught_up: _Optional[_Union[CaughtUp, _Mapping]] = ...) -> None: ...

class Delivery(_message.Message):
    __slots__ = ("position", "events", "redeliveries")
    POSITION_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    REDELIVERIES_FIELD_NUMBER: _ClassVar[int]
    position: Position
    events: _containers.RepeatedCompositeFieldContainer[Event]
    redeliveries: int
    def __init__(self, position: _Optional[_Union[Position, _Mapping]] = ..., events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ..., redeliveries: _Optional[int] = ...) -> None: ...

class CaughtUp(_message.Message):
    __slots__ = ("positions",)
    POSITIONS_FIELD_NUMBER: _ClassVar[int]
    positions: _containers.RepeatedCompositeFieldContainer[Position]
    def __init__(self, positions: _Optional[_Iterable[_Union[Position, _Mapping]]] = ...) -> None: ...

class ListParkedRequest(_message.Message):
    __slots__ = ("group", "max_count")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    MAX_COUNT_FIELD_NUMBER: _ClassVar[int]
    group: str
    max_count: int
    def __init__(self, group: _Optional[str] = ..., max_count: _Optional[int] = ...) -> None: ...

class ParkedDelivery(_message.Message):
    __slots__ = ("delivery", "reason", "parked_at")
    DELIVERY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    PARKED_AT_FIELD_NUMBER: _ClassVar[int]
    delivery: Delivery
    reason: str
    parked_at: int
    def __init__(self, delivery: _Optional[_Union[Delivery, _Mapping]] = ..., reason: _Optional[str] = ..., parked_at: _Optional[int] = ...) -> None: ...

class ListParkedResponse(_message.Message):
    __slots__ = ("parked",)
    PARKED_FIELD_NUMBER: _ClassVar[int]
    parked: _containers.RepeatedCompositeFieldContainer[ParkedDelivery]
    def __init__(self, parked: _Optional[_Iterable[_Union[ParkedDelivery, _Mapping]]] = ...) -> None: ...

class ReplayParkedRequest(_message.Message):
    __slots__ = ("group",)
    GROUP_FIELD_NUMBER: _ClassVar[int]
    group: str
    def __init__(self, group: _Optional[str] = ...) -> None: ...

class ReplayParkedResponse(_message.Message):
    __slots__ = ("replayed",)
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    replayed: int
    def __init__(self, replayed: _Optional[int] = ...) -> None: ...

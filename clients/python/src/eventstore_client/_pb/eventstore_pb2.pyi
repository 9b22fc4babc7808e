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
EXPECTED_VERSION_NO_STREAM: ExpectedVersion
EXPECTED_VERSION_ANY: ExpectedVersion
EXPECTED_VERSION_STREAM_EXISTS: ExpectedVersion

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
    __slots__ = ("from_sequence_id",)
    FROM_SEQUENCE_ID_FIELD_NUMBER: _ClassVar[int]
    from_sequence_id: int
    def __init__(self, from_sequence_id: _Optional[int] = ...) -> None: ...

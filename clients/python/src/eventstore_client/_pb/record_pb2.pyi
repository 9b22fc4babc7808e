from . import eventstore_pb2 as _eventstore_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RecordedAppend(_message.Message):
    __slots__ = ("stream_name", "first_version", "token", "events")
    STREAM_NAME_FIELD_NUMBER: _ClassVar[int]
    FIRST_VERSION_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    stream_name: str
    first_version: int
    token: str
    events: _containers.RepeatedCompositeFieldContainer[_eventstore_pb2.Event]
    def __init__(self, stream_name: _Optional[str] = ..., first_version: _Optional[int] = ..., token: _Optional[str] = ..., events: _Optional[_Iterable[_Union[_eventstore_pb2.Event, _Mapping]]] = ...) -> None: ...

<?php

declare(strict_types=1);

namespace App\Content;

/**
 * Events names the event types of a content stream and the version of
 * their schema.
 */
final class Events
{
    /** The API recorded a submission: {content_id, author_id, content}. */
    public const SUBMITTED = 'ContentSubmitted';
    /** The analyzer recorded its result: {content_id, source_event_id,
     *  analysis_result: {entities, is_toxic, token_count}}. */
    public const ANALYZED = 'ContentAnalyzed';
    /** schema_version in the metadata of the events this API writes. */
    public const SCHEMA_VERSION = 1;
}

<?php

declare(strict_types=1);

// The messages of the rules this API uses.

return [
    'required' => 'The :attribute field is required.',
    'string' => 'The :attribute must be a string.',
    'max' => [
        'string' => 'The :attribute must not be greater than :max characters.',
    ],
    'uuid' => 'The :attribute must be a valid UUID.',
];

<?php

declare(strict_types=1);

use App\Http\Controllers\ContentController;
use Illuminate\Support\Facades\Route;

Route::post('/content', [ContentController::class, 'store']);
Route::get('/content/{id}', [ContentController::class, 'show'])->whereUuid('id');

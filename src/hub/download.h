// Fetches one file into blobs/<etag> the way huggingface_hub does (download into <etag>.incomplete, resume it with
// Range after a cut, rename when whole) and additionally refuses anything whose size or sha256 is wrong.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "hub/cache.h"
#include "hub/hub_api.h"

namespace t5g::hub {

// Called with bytes on disk so far and the file size.
using BytesFn = std::function<void(int64_t done, int64_t total)>;

// Makes blobs/<meta.etag> hold the verified content of `filename`. `sha256` (may be empty: regular git files) is
// the expected content hash. Holds the blob's lock while working, so concurrent pulls of the same file (ours or
// huggingface_hub's) wait for each other instead of writing the same .incomplete file.
void download_blob(HubSession& session, const RepoCache& cache, const std::string& filename,
                   const FileMetadata& meta, const std::string& sha256, const BytesFn& on_bytes);

}  // namespace t5g::hub

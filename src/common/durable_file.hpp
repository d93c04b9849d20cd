#pragma once

#include <filesystem>
#include <string_view>

#include "common/result.hpp"

namespace vigil {

/// Durable file writes for everything that must survive a crash (job store, checkpoint
/// storage, Delta commits). Errors are io_error "<path>: <step>: <reason>"; callers add their
/// own prefix with with_context().

/// Creates `path` (O_EXCL when `exclusive`, else truncating), writes `bytes`, fsyncs, closes.
status write_file_synced(const std::filesystem::path& path, std::string_view bytes,
                         bool exclusive = false);

/// Fsyncs a directory, so that the names created, linked or renamed in it are durable.
status fsync_directory(const std::filesystem::path& dir);

/// Replaces `path` atomically with `bytes`: written and fsynced as "<path>.tmp", renamed over
/// `path` (a crash leaves the old or the new file, never a torn one). The directory is not
/// fsynced: a caller writing several files fsyncs it once.
status replace_file_synced(const std::filesystem::path& path, std::string_view bytes);

/// Copies `src` to `dst` the same way: to "<dst>.tmp", fsynced, renamed.
status copy_file_synced(const std::filesystem::path& src, const std::filesystem::path& dst);

/// Makes `dst` a durable copy of `src`, a file nobody writes again (a snapshot's file): `src` is
/// hard-linked as "<dst>.tmp", fsynced through the link and renamed over `dst`, so no byte is
/// copied. Where no hard link can be made (`dst` on another file system, such as a shared
/// volume), it is copied as copy_file_synced() does.
status link_or_copy_synced(const std::filesystem::path& src, const std::filesystem::path& dst);

}  // namespace vigil

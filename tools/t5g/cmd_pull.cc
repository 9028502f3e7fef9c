// t5g pull: download a checkpoint from the Hugging Face hub into the standard hub cache.
#include <memory>

#include "commands.h"
#include "common.h"
#include "hub/hub.h"
#include "util/error.h"

namespace t5g::cli {

namespace {
struct PullArgs {
  std::string repo, revision;
  std::vector<std::string> include;
};
}  // namespace

Action add_pull(CLI::App& app) {
  auto a = std::make_shared<PullArgs>();
  CLI::App* c = app.add_subcommand(
      "pull", "Download a checkpoint (config, generation config, safetensors shards, tokenizer and processor files) "
              "into the hub cache, resuming interrupted downloads and checking sizes and sha256. Prints the snapshot "
              "folder.");
  c->add_option("repo", a->repo, "Hub repo id org/name[@revision]")->required();
  c->add_option("--revision", a->revision, "Branch, tag or commit (overrides @revision; default main)");
  c->add_option("--include", a->include, "Glob of repo files to fetch instead of the checkpoint's files (repeatable)")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  return [a]() {
    RepoSpec spec = parse_repo_spec(a->repo);
    if (!a->revision.empty()) spec.revision = a->revision;
    const DownloadProgress bar = progress_bar();
    const std::string dir = pull(spec.repo, spec.revision, a->include, HubOptions::from_env(),
                                 [&](const PullProgress& p) { bar(p.file, p.done, p.total); });
    std::printf("%s\n", dir.c_str());
    return 0;
  };
}

}  // namespace t5g::cli

#include "output/child_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "gradsweep/stop_signals.hpp"

extern char** environ;

namespace gs {

ChildOutcome run_child(const std::vector<std::string>& args, bool stdout_to_null) {
    ChildOutcome r;
    if (args.empty()) {
        r.error = "no program given";
        return r;
    }
    std::vector<char*> argv;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    if (stdout_to_null) posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    // The child starts with SIGINT/SIGTERM at their defaults and nothing
    // blocked, whatever this process had installed.
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t defaults, none;
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGINT);
    sigaddset(&defaults, SIGTERM);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

    // Our buffered output first, so it comes before the child's.
    std::fflush(stdout);
    std::fflush(stderr);
    pid_t pid = -1;
    const bool search = args[0].find('/') == std::string::npos;
    const int e = search ? posix_spawnp(&pid, argv[0], &actions, &attr, argv.data(), environ)
                         : posix_spawn(&pid, argv[0], &actions, &attr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (e != 0) {
        r.error = std::strerror(e);
        return r;
    }
    r.started = true;

    // The stop handlers only record a signal (and SA_RESTART restarts waitpid),
    // so the wait looks at them between short sleeps.
    int status = 0;
    for (;;) {
        const int sig = StopSignals::caught();
        if (sig && !r.stop_signal) {
            r.stop_signal = sig;
            ::kill(pid, sig);
        }
        const pid_t w = ::waitpid(pid, &status, WNOHANG);
        if (w == pid) break;
        if (w < 0 && errno != EINTR) {
            r.error = std::string("waitpid: ") + std::strerror(errno);
            return r;
        }
        const timespec pause{0, 10'000'000};
        ::nanosleep(&pause, nullptr);
    }
    if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
    else if (WIFSIGNALED(status)) r.killed_by = WTERMSIG(status);
    return r;
}

std::string describe(const ChildOutcome& r) {
    if (!r.started) return "could not be started: " + r.error;
    if (!r.error.empty()) return r.error;
    if (r.killed_by) {
        const char* name = sigabbrev_np(r.killed_by);
        return std::string("was killed by ") + (name ? "SIG" + std::string(name) : "signal " + std::to_string(r.killed_by));
    }
    return "exited with status " + std::to_string(r.exit_code);
}

}  // namespace gs

/*
 * test_stale_temps.c - the temporary files of writers that were killed
 * before their rename ("<path>.tmp.<pid>", and libzip's
 * "<path>.tmp.<pid>.XXXXXX" for an archive) are removed by the next save of
 * the same path and by mt_clean_stale_temp_files(dir); a live writer's file
 * is never touched. A killed writer is simulated by the pid of a child that
 * has exited (and been reaped), a live one by a child that waits on a pipe.
 */
#include "harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmp_dir[64];
static pid_t live_child = -1;
static int live_pipe[2] = { -1, -1 };

static void stale_setup(void)
{
    mt_test_setup();
    mt_test_temp_dir(tmp_dir, sizeof tmp_dir, "stale");
}

static void stale_teardown(void)
{
    if (live_child > 0) {
        close(live_pipe[1]);   /* the child's read returns and it exits */
        waitpid(live_child, NULL, 0);
        live_child = -1;
    }
    mt_test_remove_tree(tmp_dir);
    mt_test_teardown();
}

/* The pid of a process that has ended: a writer that was killed. */
static pid_t dead_pid(void)
{
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork failed");
    if (pid == 0) _exit(0);
    cr_assert_eq(waitpid(pid, NULL, 0), pid);
    cr_assert(kill(pid, 0) != 0, "pid %d is still alive", (int)pid);
    return pid;
}

/* The pid of a process that runs until the test ends: a writer still writing. */
static pid_t live_pid(void)
{
    if (live_child > 0) return live_child;
    cr_assert_eq(pipe(live_pipe), 0);
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork failed");
    if (pid == 0) {
        char c;
        close(live_pipe[1]);
        while (read(live_pipe[0], &c, 1) > 0) {}
        _exit(0);
    }
    close(live_pipe[0]);
    live_child = pid;
    return pid;
}

static const char *path_of(const char *name)
{
    static char bufs[64][512];
    static int k;
    char *b = bufs[k++ % 64];
    snprintf(b, 512, "%s/%s", tmp_dir, name);
    return b;
}

/* "<name>.tmp.<pid><suffix>" with a few bytes in it; returns its path. */
static const char *leftover(const char *name, pid_t pid, const char *suffix)
{
    char file[256];
    snprintf(file, sizeof file, "%s.tmp.%d%s", name, (int)pid, suffix);
    const char *p = path_of(file);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert(fd >= 0, "cannot create %s", p);
    cr_assert_eq(write(fd, "half", 4), 4);
    close(fd);
    return p;
}

static bool exists(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0;
}

static int count_entries(void)
{
    DIR *d = opendir(tmp_dir);
    cr_assert_not_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

Test(stale_temps, checkpoint_save_removes_its_own_dead_leftovers, .init = stale_setup, .fini = stale_teardown)
{
    pid_t dead = dead_pid(), dead2 = dead_pid(), live = live_pid();
    const char *dead_tmp = leftover("ckpt.safetensors", dead, "");
    const char *dead_tmp2 = leftover("ckpt.safetensors", dead2, "");
    const char *live_tmp = leftover("ckpt.safetensors", live, "");
    const char *other_tmp = leftover("other.safetensors", dead, "");          /* another target */
    const char *longer_tmp = leftover("ckpt.safetensors.bak", dead, "");      /* not the same name */
    const char *not_pid = leftover("ckpt.safetensors", dead, "x");            /* "<pid>x": no temp name */
    char folder[256];
    snprintf(folder, sizeof folder, "%s/ckpt.safetensors.tmp.%d", tmp_dir, (int)dead_pid());
    cr_assert_eq(mkdir(folder, 0755), 0);                                    /* a folder is never removed */

    mt_module *net = mt_nn_linear(3, 2, true);
    mt_tensor_list params = mt_parameters(net);
    mt_optimizer *opt = mt_adam(params, MT_ADAM_DEFAULTS);
    cr_assert_eq(mt_checkpoint_save(path_of("ckpt.safetensors"), net, opt), MT_OK, "%s", mt_last_error());

    cr_assert(!exists(dead_tmp), "a dead writer's temporary file stayed: %s", dead_tmp);
    cr_assert(!exists(dead_tmp2), "%s stayed", dead_tmp2);
    cr_assert(exists(live_tmp), "a live writer's temporary file was removed");
    cr_assert(exists(other_tmp), "another target's temporary file was removed");
    cr_assert(exists(longer_tmp) && exists(not_pid) && exists(folder));
    cr_assert(exists(path_of("ckpt.safetensors")));
    /* and the checkpoint is whole */
    cr_assert_eq(mt_checkpoint_load(path_of("ckpt.safetensors"), net, opt), MT_OK, "%s", mt_last_error());

    mt_optimizer_free(opt);
    mt_tensor_list_free(&params);
    mt_module_free(net);
}

Test(stale_temps, every_durable_writer_cleans_its_target, .init = stale_setup, .fini = stale_teardown)
{
    pid_t dead = dead_pid(), live = live_pid();
    mt_tensor *t = mt_ones(MT_F32, MT_SHAPE(2, 3));
    struct { const char *name; } targets[] = { { "a.npy" }, { "s.npy" }, { "z.npz" }, { "e.npz" }, { "m.safetensors" } };
    const char *dead_tmps[5], *live_tmps[5], *zip_tmp;
    for (int i = 0; i < 5; i++) {
        dead_tmps[i] = leftover(targets[i].name, dead, "");
        live_tmps[i] = leftover(targets[i].name, live, "");
    }
    zip_tmp = leftover("z.npz", dead, ".Ab12Cd");   /* libzip's own temporary inside a killed npz save */
    const char *strings[2] = { "a", "bc" };
    mt_named_tensor item = { (char *)"t", t };
    cr_assert_eq(mt_npy_save(path_of("a.npy"), t), MT_OK, "%s", mt_last_error());
    cr_assert_eq(mt_npy_save_strings(path_of("s.npy"), 2, strings), MT_OK, "%s", mt_last_error());
    cr_assert_eq(mt_npz_save(path_of("z.npz"), (mt_tensor_list){ 1, &item }, true), MT_OK, "%s", mt_last_error());
    cr_assert_eq(mt_npz_save(path_of("e.npz"), (mt_tensor_list){ 0, NULL }, false), MT_OK, "%s", mt_last_error());
    mt_module *lin = mt_nn_linear(2, 2, false);
    cr_assert_eq(mt_module_save(lin, path_of("m.safetensors")), MT_OK, "%s", mt_last_error());
    mt_module_free(lin);
    for (int i = 0; i < 5; i++) {
        cr_assert(!exists(dead_tmps[i]), "%s: the dead writer's file stayed", targets[i].name);
        cr_assert(exists(live_tmps[i]), "%s: the live writer's file was removed", targets[i].name);
    }
    cr_assert(!exists(zip_tmp), "libzip's temporary of a dead writer stayed");

    /* a bulk writer that skips the fsyncs skips the folder scan too: it cleans once at its start */
    const char *bulk = leftover("b.npy", dead, "");
    cr_assert_eq(mt_npy_save_with(path_of("b.npy"), t, &(mt_npy_save_opts){ .no_sync = true }), MT_OK);
    cr_assert(exists(bulk));
    int removed = -1;
    cr_assert_eq(mt_clean_stale_temp_files(tmp_dir, &removed), MT_OK, "%s", mt_last_error());
    cr_assert_eq(removed, 1);
    cr_assert(!exists(bulk));
}

Test(stale_temps, clean_a_folder_at_startup, .init = stale_setup, .fini = stale_teardown)
{
    pid_t dead = dead_pid(), live = live_pid();
    const char *gone[] = {
        leftover("last.safetensors", dead, ""), leftover("best.safetensors", dead, ""),
        leftover("x.npz", dead, ".q1W2e3"), leftover("odd.tmp.5.npy", dead, ""),
    };
    const char *kept[] = {
        leftover("last.safetensors", live, ""), leftover("mine.npy", getpid(), ""),
        leftover("y.npz", dead, ".short"),        /* not libzip's six characters */
        leftover("z.npy", dead, ".Ab12Cd.more"),
        path_of("notes.tmp"), path_of("plain.npy"), path_of(".tmp.123"),
    };
    for (size_t i = 4; i < sizeof kept / sizeof *kept; i++) {
        int fd = open(kept[i], O_WRONLY | O_CREAT, 0644);
        cr_assert(fd >= 0);
        close(fd);
    }
    char link_path[256], target[256];
    snprintf(link_path, sizeof link_path, "%s/l.npy.tmp.%d", tmp_dir, (int)dead);
    snprintf(target, sizeof target, "%s", kept[5]);
    cr_assert_eq(symlink(target, link_path), 0);   /* a link is never removed (nor followed) */
    int before = count_entries();

    int removed = -1;
    cr_assert_eq(mt_clean_stale_temp_files(tmp_dir, &removed), MT_OK, "%s", mt_last_error());
    cr_assert_eq(removed, 4);
    for (size_t i = 0; i < sizeof gone / sizeof *gone; i++) cr_assert(!exists(gone[i]), "%s stayed", gone[i]);
    for (size_t i = 0; i < sizeof kept / sizeof *kept; i++) cr_assert(exists(kept[i]), "%s was removed", kept[i]);
    cr_assert(exists(link_path) && exists(target));
    cr_assert_eq(count_entries(), before - 4);
    /* again: nothing left to do */
    cr_assert_eq(mt_clean_stale_temp_files(tmp_dir, &removed), MT_OK);
    cr_assert_eq(removed, 0);
    cr_assert_eq(mt_clean_stale_temp_files(tmp_dir, NULL), MT_OK);

    cr_assert_eq(mt_clean_stale_temp_files(path_of("no-such-folder"), &removed), MT_ERR_IO);
    cr_assert(strstr(mt_last_error(), "clean_stale_temp_files: ") && strstr(mt_last_error(), "no-such-folder"),
              "%s", mt_last_error());
    cr_assert_eq(removed, 0);
    cr_assert_eq(mt_clean_stale_temp_files(NULL, NULL), MT_ERR_ARGUMENT);
}

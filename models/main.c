/* main.c - the mytorch command line. */
#include <stdio.h>
#include <string.h>

#include "engine/mytorch.h"

int main(int argc, char **argv)
{
    (void)argc; (void)argv;
    printf("mytorch\n");
    return 0;
}
